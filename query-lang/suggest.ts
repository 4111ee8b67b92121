/**
 * Did-you-mean: the candidates closest to a misspelt name.
 *
 * Distance is the optimal string alignment distance (Levenshtein plus transpositions),
 * case-insensitive. A candidate qualifies when it is within a third of the input's length
 * (at least 1, at least 2 for inputs of 5+ characters), or when one contains the other.
 */

function osa(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  if (m === 0) return n;
  if (n === 0) return m;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  let cur = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= m; i++) {
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2]! + 1);
      cur[j] = v;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[n]!;
}

/** `cnt` abbreviates `count`: same first letter, every letter in order. */
function abbreviates(x: string, y: string): boolean {
  if (x[0] !== y[0] || x.length >= y.length) return false;
  let j = 0;
  for (const c of y) if (c === x[j]) j++;
  return j === x.length;
}

/** Up to `max` candidates close to `input`, best first (ties keep candidate order). */
export function suggest(input: string, candidates: Iterable<string>, max = 3): string[] {
  const x = input.toLowerCase();
  if (x.length === 0) return [];
  const limit = Math.max(x.length >= 5 ? 2 : 1, Math.floor(x.length / 3));
  const close: { c: string; d: number; i: number }[] = [];
  const loose: { c: string; d: number; i: number }[] = [];
  const seen = new Set<string>();
  let i = 0;
  for (const c of candidates) {
    if (seen.has(c)) continue;
    seen.add(c);
    const y = c.toLowerCase();
    const d = osa(x, y);
    if (d <= limit) close.push({ c, d, i: i++ });
    else if (x.length >= 3 && (y.includes(x) || (y.length >= 3 && x.includes(y)) || abbreviates(x, y))) loose.push({ c, d, i: i++ });
  }
  // Names within typing distance first; names containing the input only when there are none.
  const scored = close.length > 0 ? close : loose;
  scored.sort((a, b) => a.d - b.d || a.i - b.i);
  return scored.slice(0, max).map((s) => s.c);
}
