/** The median of `xs` (the mean of the middle two for an even count; NaN when empty). */
export function median(xs: readonly number[]): number {
  const v = [...xs].sort((x, y) => x - y);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}
