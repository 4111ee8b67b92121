/**
 * Errors of the query language, as data.
 *
 * Every problem the lexer, parser, compiler or runner finds is a `QueryIssue`: a
 * discriminated union on `code`, with a one-line `message`, the `span` of query text it
 * is about, an optional `hint` and code-specific fields (`suggestions` for did-you-mean).
 * Nothing here throws while finding problems; `QueryError` only carries a list of issues
 * to the caller, and separate renderers turn issues into text (the query line with a
 * caret under the culprit) or JSON.
 *
 *   retis-query: unknown field 'devv'; did you mean 'dev'?
 *     drops where devv = "eth0"
 *                 ^^^^
 */

////  SPANS  ////

/** A slice of the query text: character offsets, `end` exclusive. */
export interface Span {
  start: number;
  end: number;
}

/** Where a span starts, 1-based, as editors count. */
export interface Position {
  line: number;
  column: number;
}

export function spanOf(a: Span, b: Span = a): Span {
  return { start: Math.min(a.start, b.start), end: Math.max(a.end, b.end) };
}

/** Line and column (1-based) of an offset in `source`. */
export function positionAt(source: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  const stop = Math.min(Math.max(offset, 0), source.length);
  for (let i = 0; i < stop; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: stop - lineStart + 1 };
}

////  ISSUES  ////

interface IssueBase {
  /** One line, complete on its own (it includes the did-you-mean, if any). */
  message: string;
  /** The query text at fault; absent for problems of the whole run (inputs, the database). */
  span?: Span;
  /** What to type instead, when we can tell. */
  hint?: string;
}

export type LiteralKind = 'number' | 'ip' | 'cidr' | 'mac' | 'duration' | 'time' | 'string' | 'track';

export type QueryIssue =
  | (IssueBase & { code: 'unexpected_character'; char: string })
  | (IssueBase & { code: 'unterminated_string' })
  | (IssueBase & { code: 'syntax_error'; expected: string[]; found: string })
  | (IssueBase & { code: 'unknown_source'; name: string; suggestions: string[] })
  | (IssueBase & { code: 'unknown_field'; name: string; suggestions: string[] })
  | (IssueBase & { code: 'unknown_value'; field: string; value: string; suggestions: string[] })
  | (IssueBase & { code: 'unknown_function'; name: string; suggestions: string[] })
  | (IssueBase & { code: 'misplaced_function'; name: string })
  | (IssueBase & { code: 'invalid_literal'; literal: LiteralKind; text: string })
  | (IssueBase & { code: 'invalid_operator'; op: string; field: string })
  | (IssueBase & { code: 'invalid_condition' })
  | (IssueBase & { code: 'type_mismatch'; field: string; expected: string; found: string })
  | (IssueBase & { code: 'invalid_stage'; stage: string })
  | (IssueBase & { code: 'runtime_error' })
  | (IssueBase & { code: 'input_error'; path: string; line: number | null });

export type IssueCode = QueryIssue['code'];

/** `'a'`, `'a' or 'b'`, `'a', 'b' or 'c'`. */
export function orList(items: readonly string[], quote = true): string {
  const q = items.map((s) => (quote ? `'${s}'` : s));
  if (q.length <= 1) return q.join('');
  return `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

/** `; did you mean 'x'?` or the empty string. */
export function didYouMean(suggestions: readonly string[]): string {
  return suggestions.length > 0 ? `; did you mean ${orList(suggestions)}?` : '';
}

////  ERROR CLASS  ////

/**
 * Thrown (or returned) with every issue found. `message` is computed on first use from
 * the issues, as the plain one-line form of the first one.
 */
export class QueryError extends Error {
  override readonly name = 'QueryError';
  constructor(
    readonly issues: QueryIssue[],
    readonly source: string,
  ) {
    super();
    Object.defineProperty(this, 'message', { get: () => issues[0]?.message ?? 'invalid query', configurable: true });
  }
}

////  RENDERERS  ////

export interface TextRenderOptions {
  /** Program name prefixed to the first line, as `retis-query: message`. */
  prog?: string;
}

/**
 * The issue as text: the message, then (when it has a span) the query line with carets
 * under the culprit, then the hint.
 *
 * ```
 * retis-query: unknown field 'devv'; did you mean 'dev'?
 *   drops where devv = "eth0"
 *               ^^^^
 * ```
 */
export function renderIssueText(issue: QueryIssue, source: string, opts: TextRenderOptions = {}): string {
  const lines = [`${opts.prog ? `${opts.prog}: ` : ''}${issue.message}`];
  if (issue.span && source.length > 0) {
    const { line, column } = positionAt(source, issue.span.start);
    const text = source.split('\n')[line - 1] ?? '';
    // Tabs would misalign the caret: show them as one space each.
    const shown = text.replace(/\t/g, ' ');
    const width = Math.max(1, Math.min(issue.span.end, issue.span.start + shown.length - column + 1) - issue.span.start);
    lines.push(`  ${shown}`, `  ${' '.repeat(column - 1)}${'^'.repeat(width)}`);
  }
  if (issue.hint) lines.push(`  hint: ${issue.hint}`);
  return lines.join('\n');
}

/** Every issue as text, separated by blank lines. */
export function renderIssuesText(issues: readonly QueryIssue[], source: string, opts: TextRenderOptions = {}): string {
  return issues.map((i) => renderIssueText(i, source, opts)).join('\n\n');
}

/** JSON-ready form of an issue: the issue's own fields plus the span's line and column. */
export function issueToJson(issue: QueryIssue, source: string): Record<string, unknown> {
  const { span, ...rest } = issue;
  const out: Record<string, unknown> = { ...rest };
  if (span) out.span = { ...span, ...positionAt(source, span.start) };
  return out;
}

/** One JSON line per issue: `{"error":{"code":...,"message":...,"span":{...}}}`. */
export function renderIssuesJson(issues: readonly QueryIssue[], source: string): string {
  return issues.map((i) => JSON.stringify({ error: issueToJson(i, source) })).join('\n');
}
