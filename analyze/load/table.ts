/**
 * The `events` table as queries see it, and the table rows are stored in.
 *
 * Rows live in `events_base`: the model's columns, the JSON text of lazy sections for rows
 * read from Retis JSON (model/lazy.ts), and `_problem`, the first shape problem of the
 * row found at load (NULL when fine). `events` is a view with exactly the model's columns,
 * in the model's order; it converts a lazy section's text to its STRUCT only when a
 * query reads that section, for the rows that reach it.
 */
import { FLAT_COLUMNS, SECTIONS, quoteIdent, sqlType } from '../model/schema.ts';
import { LAZY_SECTIONS, isLazy, lazyColumn, lazySectionExpr } from '../model/lazy.ts';
import { problemExpr, requiredPaths } from './validate.ts';
import { requiredStructure } from '../model/lazy.ts';

export const EVENTS_BASE_SQL = `CREATE TABLE IF NOT EXISTS events_base (
  ${[
    ...[...FLAT_COLUMNS, ...SECTIONS].map((c) => `${quoteIdent(c.name)} ${sqlType(c.type)}`),
    ...LAZY_SECTIONS.map((s) => `${lazyColumn(s)} VARCHAR`),
    '_problem VARCHAR',
  ].join(',\n  ')}
)`;

export const EVENTS_VIEW_SQL = `CREATE VIEW IF NOT EXISTS events AS SELECT
  ${[
    ...FLAT_COLUMNS.map((c) => quoteIdent(c.name)),
    ...SECTIONS.map((s) =>
      isLazy(s.name)
        ? `CASE WHEN ${lazyColumn(s.name)} IS NULL THEN ${quoteIdent(s.name)} ELSE ${lazySectionExpr(s.name)} END AS ${quoteIdent(s.name)}`
        : quoteIdent(s.name),
    ),
  ].join(',\n  ')}
FROM events_base`;

/**
 * `select` (model rows with STRUCT sections) plus `_problem`. With `lazy`, the lazy
 * sections are JSON text columns: their required fields are extracted (as JSON, no
 * conversion) in a layer below, so each section's text is parsed once for all checks.
 */
export function withProblem(select: string, lazy: boolean): string {
  if (!lazy) return `SELECT *, ${problemExpr()} AS _problem FROM (${select})`;
  const v = (s: string) => quoteIdent(`_v_${s}`);
  const extracts = LAZY_SECTIONS.map((s) => `from_json(${lazyColumn(s)}, '${requiredStructure(requiredPaths(s))}') AS ${v(s)}`);
  const problem = problemExpr((s) => (isLazy(s) ? v(s) : quoteIdent(s)));
  return `SELECT * EXCLUDE (${LAZY_SECTIONS.map(v).join(', ')}), ${problem} AS _problem
    FROM (SELECT *, ${extracts.join(', ')} FROM (${select}))`;
}
