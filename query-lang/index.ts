/**
 * retis-query, the query language: a source, then stages after `|`, compiled to one
 * DuckDB statement over the event model.
 *
 * ```ts
 * const q = await prepareQuery(db, 'drops | count by reason');
 * await executeQuery(db, q, text, { format: 'json', out, files });
 * ```
 *
 * Layers, each usable alone: `lex` (tokens) → `parseTokens` (CST) → `buildAst` (AST) →
 * `compile` (SQL + params) → `executeQuery` (output). Errors at every layer are
 * `QueryIssue` data, rendered by `renderIssuesText` / `renderIssuesJson`.
 */
export { lex } from './lexer.ts';
export { parseTokens } from './parser.ts';
export { buildAst, type Query, type Stage, type Expr, type Operand } from './visitor/ast.ts';
export { compile, type CompiledQuery, type CompileOptions, type CompileResult, type OutputMode, type Param } from './compile.ts';
export { Catalog, type Domain } from './domains.ts';
export { eventScope, trackScope, upcallScope, EVENT_FIELDS, TRACK_FIELDS, UPCALL_FIELDS, type FieldDef, type Kind } from './fields.ts';
export { SOURCE_NAMES, type SourceName } from './sources.ts';
export {
  QueryError,
  renderIssueText,
  renderIssuesText,
  renderIssuesJson,
  issueToJson,
  positionAt,
  type QueryIssue,
  type IssueCode,
  type Span,
} from './errors.ts';
export { parseQuery, prepareQuery, executeQuery, explainText, runSql, loadDomains, ensureSeries, type ExecuteOptions } from './run.ts';
export { queryMain, type QueryArgs } from './cli-entry.ts';
