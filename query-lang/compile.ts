/**
 * The compiler: AST → one DuckDB SQL statement and its parameters.
 *
 * A query is a source followed by stages; each stage transforms a relation (`Rel`):
 * `where` adds conditions, `order by`/`limit` set clauses, `fields` projects, and the
 * aggregating stages (`count`, `top`, `stats`, `histogram`) wrap what came before into a
 * subquery. The last relation is rendered as the statement. Every user value becomes a
 * parameter (`$1`, `$2`, ...), cast to the type of the column it is compared with so that
 * DuckDB keeps its filter on the column's own type.
 *
 * Problems are collected as issues (all of them, not just the first); bare names that
 * only the data can confirm are reported back as `pending` domains, for the runner to
 * fetch and compile again.
 */
import { quoteIdent } from '../analyze/model/schema.ts';
import { didYouMean, orList, spanOf, type QueryIssue, type Span } from './errors.ts';
import { Catalog, matchProbe, matchValue, PROTOCOLS, type Domain } from './domains.ts';
import {
  displaySql,
  eventScope,
  NUMERIC_KINDS,
  rowScope,
  trackScope,
  upcallScope,
  type FieldDef,
  type Kind,
  type Scope,
} from './fields.ts';
import { EVENT_TABLE_COLUMNS, EVENT_TABLE_SQL, SOURCE_NAMES, TRACK_COLUMN_NAMES, tracksSql, upcallsSql, type SourceName } from './sources.ts';
import { suggest } from './suggest.ts';
import { normalizeProbe, parseMac, VALUE_NOUN, valueText, type Value } from './values.ts';
import type { CallRef, CompareOp, Expr, FieldRef, Operand, Query, Stage } from './visitor/ast.ts';

////  RESULT TYPES  ////

/** A bound parameter value (a subset of what @duckdb/node-api binds). */
export type Param = string | number | bigint | boolean;

export interface OutputColumn {
  name: string;
  kind: Kind;
}

/**
 * What the statement returns:
 * - `events`: event rows (every column, or the flat table columns, per `eventColumns`);
 * - `rows`: flat rows with `columns`;
 * - `series`: the `eid`s of the events to print as packet series (`| sort`);
 * - `pcap`: event rows (every column) in arrival order, for `| pcap FILE`.
 */
export type OutputMode = 'events' | 'rows' | 'series' | 'pcap';

export interface CompiledQuery {
  source: SourceName;
  mode: OutputMode;
  sql: string;
  params: Param[];
  columns: OutputColumn[];
  /** The statement reads `series_map`: build it first (analyze/sort/series.ts). */
  needsSeries: boolean;
  pcapFile?: string;
}

export interface CompileOptions {
  /** Event rows: every column (text, JSON) or the flat table columns (table, csv). Default all. */
  eventColumns?: 'all' | 'flat';
}

export type CompileResult =
  | { ok: true; query: CompiledQuery }
  | { ok: false; issues: QueryIssue[]; pending: Domain[] };

////  RELATIONS  ////

interface OrderItem {
  sql: string;
  desc: boolean;
}

interface Rel {
  kind: 'events' | 'tracks' | 'upcalls' | 'rows';
  from: string;
  where: string[];
  order: OrderItem[] | null;
  defaultOrder: OrderItem[];
  limit: string | null;
  scope: Scope;
  /** Output columns (tracks, upcalls, rows). */
  columns: FieldDef[];
  /** A `fields` projection waiting to be rendered. */
  projection: FieldDef[] | null;
  /** Tracks only: the relation is the tracks source itself, and every condition on it is a prefilter. */
  prefiltered?: boolean;
}

/** Markers replaced by the tracks and upcalls relations once all they must provide is known. */
const TRACKS = '\u0001tracks\u0001';
const UPCALLS = '\u0001upcalls\u0001';

const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  UTINYINT: [0n, 255n],
  USMALLINT: [0n, 65535n],
  UINTEGER: [0n, 4294967295n],
  UBIGINT: [0n, 18446744073709551615n],
  UHUGEINT: [0n, (1n << 128n) - 1n],
  TINYINT: [-128n, 127n],
  SMALLINT: [-32768n, 32767n],
  INTEGER: [-2147483648n, 2147483647n],
  BIGINT: [-(1n << 63n), (1n << 63n) - 1n],
  HUGEINT: [-(1n << 127n), (1n << 127n) - 1n],
};

const KIND_NOUN: Record<Kind, string> = {
  int: 'a number',
  float: 'a number',
  string: 'text',
  addr: 'an IP address',
  mac: 'a MAC address',
  bool: 'true or false',
  duration: 'a duration',
  ts: 'a timestamp (ns)',
  time: 'a date/time',
  track: 'a tracking id',
  list: 'a list',
  struct: 'a section',
  bytes: 'bytes',
};

const FLIP: Record<CompareOp, CompareOp> = { '=': '=', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=', '~': '~', '!~': '!~' };

const SERIES_FUNCTIONS = ['any', 'all', 'first', 'last'];
const TEXT_KINDS: ReadonlySet<Kind> = new Set(['string', 'addr', 'mac']);

/** A compiled operand: SQL with the field it reads. */
interface Term {
  sql: string;
  def: FieldDef;
  span: Span;
}

/** Placeholder SQL after an issue: compilation goes on to find further issues. */
const BAD = 'NULL';

/** `scope`, adding the name of every column a query resolves in it to `used`. */
function noting(scope: Scope, used: Set<string>): Scope {
  return {
    ...scope,
    resolve: (path) => {
      const f = scope.resolve(path);
      if (f) used.add(f.name);
      return f;
    },
  };
}

////  COMPILER  ////

class Compiler {
  readonly issues: QueryIssue[] = [];
  readonly pending = new Map<string, Domain>();
  readonly params: Param[] = [];
  private n = 0;
  private readonly extras: { sql: string; alias: string }[] = [];
  private readonly prefilter: string[] = [];
  private trackLimit: string | null = null;
  private readonly upcallCols = new Set<string>();
  private readonly trackCols = new Set<string>();
  private trackAll = false;
  /** The tracks scope, noting which columns the query reads (the others are not computed). */
  private readonly tracks = noting(trackScope, this.trackCols);
  private upcallAll = false;
  /** The upcalls scope, noting which columns the query reads (the others are not joined in). */
  private readonly upcalls = noting(upcallScope, this.upcallCols);
  needsSeries = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly opts: CompileOptions,
  ) {}

  ////  parameters

  private param(v: Param): string {
    this.params.push(v);
    return `$${this.params.length}`;
  }

  /** An integer parameter cast to `type`, or to a wider type when the value does not fit. */
  private intParam(v: bigint, type: string): string {
    const r = INT_RANGES[type];
    let t = type;
    if (!r || v < r[0] || v > r[1]) t = v < 0n ? 'HUGEINT' : v > INT_RANGES.HUGEINT![1] ? 'UHUGEINT' : 'HUGEINT';
    if (!r && (type === 'DOUBLE' || type === 'FLOAT')) t = type;
    const bound: Param = v >= INT_RANGES.BIGINT![0] && v <= INT_RANGES.BIGINT![1] ? v : v.toString();
    return `CAST(${this.param(bound)} AS ${t})`;
  }

  private issue(i: QueryIssue): string {
    this.issues.push(i);
    return BAD;
  }

  ////  queries and stages

  query(q: Query): CompiledQuery | undefined {
    const source = q.source.name.toLowerCase() as SourceName;
    if (!SOURCE_NAMES.includes(source)) {
      const sug = suggest(q.source.name, SOURCE_NAMES);
      const isField = eventScope.resolve([q.source.name]) !== undefined;
      this.issues.push({
        code: 'unknown_source',
        name: q.source.name,
        suggestions: sug,
        message: `unknown source '${q.source.name}'${didYouMean(sug)}`,
        span: q.source.span,
        hint: isField
          ? `a query starts with a source: events where ${q.source.name} ...`
          : `a query starts with one of ${orList(SOURCE_NAMES)}`,
      });
      return undefined;
    }
    let rel = this.source(source);
    let terminal: { mode: 'series' | 'pcap'; file?: string } | null = null;
    for (const [i, st] of q.stages.entries()) {
      if (terminal) {
        this.issues.push({
          code: 'invalid_stage',
          stage: st.kind,
          message: `nothing can follow ${terminal.mode === 'series' ? 'sort' : 'pcap'}: it must be the last stage`,
          span: st.span,
        });
        break;
      }
      if (st.kind === 'sort' || st.kind === 'pcap') {
        if (rel.kind === 'rows') {
          this.issues.push({
            code: 'invalid_stage',
            stage: st.kind,
            message: `${st.kind} needs events, tracks or upcalls, not aggregated rows`,
            span: st.span,
            hint: `put ${st.kind} before the aggregating stage, or drop it`,
          });
          break;
        }
        terminal = st.kind === 'sort' ? { mode: 'series' } : { mode: 'pcap', file: st.file };
        if (st.kind === 'sort') this.needsSeries = true;
        continue;
      }
      rel = this.stage(rel, st, i === 0 && q.stages[0]?.kind === 'where');
    }
    if (this.issues.length > 0 || this.pending.size > 0) return undefined;
    let sql: string;
    let mode: OutputMode;
    let columns: OutputColumn[] = [];
    if (terminal) {
      mode = terminal.mode;
      sql = this.eventsOf(rel, terminal.mode === 'series' ? 'eid' : '*');
    } else if (rel.kind === 'events' && !rel.projection) {
      mode = 'events';
      const flat = this.opts.eventColumns === 'flat';
      sql = this.render(rel, true, flat ? EVENT_TABLE_SQL : '*');
      if (flat) columns = EVENT_TABLE_COLUMNS.map((name) => ({ name, kind: name === 'track' || name === 'skb' ? 'string' : 'int' }));
    } else {
      mode = 'rows';
      sql = this.render(rel, true);
      columns = (rel.projection ?? rel.columns).map((c) => ({ name: c.name, kind: c.kind }));
    }
    if (sql.includes(TRACKS)) sql = sql.replaceAll(TRACKS, tracksSql(this.trackAll ? undefined : this.trackCols, this.extras, this.prefilter, this.trackLimit));
    if (sql.includes(UPCALLS)) sql = sql.replaceAll(UPCALLS, upcallsSql(this.upcallAll ? undefined : this.upcallCols));
    const out: CompiledQuery = { source, mode, sql, params: this.params, columns, needsSeries: this.needsSeries };
    if (terminal?.file !== undefined) out.pcapFile = terminal.file;
    return out;
  }

  private source(name: SourceName): Rel {
    const base = { where: [] as string[], order: null, limit: null, projection: null };
    switch (name) {
      case 'events':
        return { ...base, kind: 'events', from: 'events', scope: eventScope, columns: [], defaultOrder: [{ sql: 'eid', desc: false }] };
      case 'drops':
        return { ...base, kind: 'events', from: 'events', where: ['reason IS NOT NULL'], scope: eventScope, columns: [], defaultOrder: [{ sql: 'eid', desc: false }] };
      case 'tracks':
        this.needsSeries = true;
        return {
          ...base,
          kind: 'tracks',
          from: `${TRACKS} AS _tracks`,
          prefiltered: true,
          scope: this.tracks,
          columns: TRACK_COLUMNS,
          defaultOrder: [{ sql: 'track', desc: false }],
        };
      case 'upcalls':
        return {
          ...base,
          kind: 'upcalls',
          from: `${UPCALLS} AS _upcalls`,
          scope: this.upcalls,
          columns: UPCALL_COLUMNS,
          defaultOrder: [{ sql: '_eid', desc: false }],
        };
    }
  }

  private stage(rel: Rel, st: Stage, firstWhere: boolean): Rel {
    switch (st.kind) {
      case 'where': {
        if (rel.limit !== null || rel.projection !== null) rel = this.wrap(rel);
        // On the tracks relation itself, `any(c)` conjuncts also become semi-joins applied
        // before aggregating, so that only matching series are aggregated.
        const pushed = firstWhere && rel.kind === 'tracks' && rel.prefiltered === true && this.prefilterTracks(st.cond);
        // Entirely made of any(...): the semi-join is the whole condition.
        if (pushed) return { ...rel, prefiltered: true };
        return { ...rel, where: [...rel.where, this.cond(st.cond, rel.scope)], prefiltered: false };
      }
      case 'count':
        return this.countBy(rel, st.by, null);
      case 'top':
        return this.top(rel, st);
      case 'fields': {
        if (rel.projection !== null) rel = this.wrap(rel);
        const used = new Set<string>();
        const projection = st.items.map((it) => {
          const t = this.term(it.operand, rel.scope);
          let name = it.as?.name ?? operandName(it.operand);
          for (let k = 2; used.has(name); k++) name = `${it.as?.name ?? operandName(it.operand)}_${k}`;
          used.add(name);
          return { ...t.def, name, sql: t.sql };
        });
        return { ...rel, projection };
      }
      case 'order': {
        if (rel.limit !== null) rel = this.wrap(rel);
        const scope = rel.projection ? rowScope(rel.projection.map((p) => ({ ...p, sql: quoteIdent(p.name) }))) : rel.scope;
        const order = st.items.map((it) => {
          const t = this.term(it.operand, scope, rel.projection ? rel.scope : undefined);
          return { sql: t.sql, desc: it.desc };
        });
        return { ...rel, order };
      }
      case 'limit': {
        if (rel.limit !== null) rel = this.wrap(rel);
        const limit = this.intParam(BigInt(st.n), 'BIGINT');
        // The first N tracks: choose them before aggregating rather than after.
        if (rel.kind === 'tracks' && rel.prefiltered && rel.order === null && rel.projection === null) this.trackLimit = limit;
        return { ...rel, limit, prefiltered: false };
      }
      case 'stats':
        return this.stats(rel, st.operand, st.by);
      case 'histogram':
        return this.histogram(rel, st);
      case 'sort':
      case 'pcap':
        return rel;
    }
  }

  /** Render a relation as a SELECT. `final`: the statement's own output (display forms, default order). */
  private render(rel: Rel, final: boolean, eventSelect = '*'): string {
    let select: string;
    if (rel.projection) {
      select = rel.projection.map((p) => selectItem(p, final)).join(', ');
    } else if (rel.kind === 'events') {
      select = eventSelect;
    } else if (final) {
      if (rel.kind === 'upcalls') this.upcallAll = true;
      if (rel.kind === 'tracks') this.trackAll = true;
      select = rel.columns.map((c) => selectItem(c, true)).join(', ');
    } else {
      select = '*';
    }
    const order = rel.order ?? (final || rel.limit !== null ? rel.defaultOrder : []);
    // A projection wrapped into a subquery keeps its rows' order in hidden columns.
    let hidden = '';
    if (!final && rel.projection) hidden = (rel.order ?? rel.defaultOrder).map((o, i) => `, ${o.sql} AS _ord${i}`).join('');
    const parts = [`SELECT ${select}${hidden} FROM ${rel.from}`];
    if (rel.where.length > 0) parts.push(`WHERE ${rel.where.map((w) => (rel.where.length > 1 ? `(${w})` : w)).join(' AND ')}`);
    if (order.length > 0) parts.push(`ORDER BY ${order.map((o) => `${o.sql}${o.desc ? ' DESC NULLS LAST' : ''}`).join(', ')}`);
    if (rel.limit !== null) parts.push(`LIMIT ${rel.limit}`);
    return parts.join('\n');
  }

  /** The relation as a subquery, to apply further stages to its result. */
  private wrap(rel: Rel): Rel {
    const alias = `_q${++this.n}`;
    const from = `(${this.render(rel, false)}) AS ${alias}`;
    if (rel.projection) {
      const order = rel.order ?? rel.defaultOrder;
      const columns = rel.projection.map((p) => ({ ...p, sql: quoteIdent(p.name) }));
      return {
        kind: 'rows',
        from,
        where: [],
        order: null,
        limit: null,
        projection: null,
        scope: rowScope(columns),
        columns,
        defaultOrder: order.map((o, i) => ({ sql: `_ord${i}`, desc: o.desc })),
      };
    }
    return { ...rel, from, where: [], order: null, limit: null, projection: null, prefiltered: false };
  }

  /** SELECT of the events a relation stands for, in arrival order (`sort`, `pcap`). */
  private eventsOf(rel: Rel, what: 'eid' | '*'): string {
    if (rel.kind === 'events') {
      if (rel.order === null && rel.limit === null) {
        const r = { ...rel, defaultOrder: what === 'eid' ? [] : rel.defaultOrder };
        return this.render(r, true, what);
      }
      return `SELECT ${what} FROM (${this.render(rel, false)}) AS _sel${what === '*' ? '\nORDER BY eid' : ''}`;
    }
    this.needsSeries = true;
    const keys =
      rel.kind === 'tracks'
        ? `SELECT track FROM (${this.render(rel, false)}) AS _sel`
        : `SELECT series_tid FROM series_map WHERE eid IN (SELECT _eid FROM (${this.render(rel, false)}) AS _sel)`;
    return `SELECT ${what === 'eid' ? 'eid' : 'e.*'} FROM events e JOIN series_map m USING (eid)
WHERE m.series_tid IN (${keys})${what === '*' ? '\nORDER BY e.eid' : ''}`;
  }

  ////  aggregating stages

  private prepareAggregate(rel: Rel): Rel {
    return rel.limit !== null || rel.projection !== null ? this.wrap(rel) : rel;
  }

  private aggregateFrom(rel: Rel): string {
    return `FROM ${rel.from}${rel.where.length > 0 ? `\nWHERE ${rel.where.map((w) => (rel.where.length > 1 ? `(${w})` : w)).join(' AND ')}` : ''}`;
  }

  private keyTerms(rel: Rel, by: Operand[]): { term: Term; name: string }[] {
    const used = new Set<string>();
    return by.map((o) => {
      const term = this.term(o, rel.scope);
      let name = operandName(o);
      for (let k = 2; used.has(name); k++) name = `${operandName(o)}_${k}`;
      used.add(name);
      return { term, name };
    });
  }

  private rowsRel(sql: string, columns: FieldDef[], defaultOrder: OrderItem[]): Rel {
    return {
      kind: 'rows',
      from: `(${sql}) AS _q${++this.n}`,
      where: [],
      order: null,
      limit: null,
      projection: null,
      scope: rowScope(columns),
      columns,
      defaultOrder,
    };
  }

  private countBy(rel: Rel, by: Operand[], limit: number | null): Rel {
    rel = this.prepareAggregate(rel);
    const keys = this.keyTerms(rel, by);
    const countName = keys.some((k) => k.name === 'count') ? 'events' : 'count';
    const select = [...keys.map((k) => (k.term.sql === quoteIdent(k.name) ? k.term.sql : `${k.term.sql} AS ${quoteIdent(k.name)}`)), `count(*) AS ${countName}`].join(', ');
    const sql = `SELECT ${select}\n${this.aggregateFrom(rel)}${keys.length > 0 ? '\nGROUP BY ALL' : ''}`;
    const columns: FieldDef[] = [
      ...keys.map((k) => ({ ...k.term.def, name: k.name, sql: quoteIdent(k.name) })),
      { name: countName, sql: countName, type: 'BIGINT', kind: 'int' as const, measure: true, doc: 'number of rows' },
    ];
    const order = keys.length === 0 ? [] : [{ sql: countName, desc: true }, ...keys.map((k) => ({ sql: quoteIdent(k.name), desc: false }))];
    const out = this.rowsRel(sql, columns, order);
    if (limit !== null) out.limit = this.intParam(BigInt(limit), 'BIGINT');
    return out;
  }

  private top(rel: Rel, st: Extract<Stage, { kind: 'top' }>): Rel {
    if (st.by.length === 0) {
      const count = rel.scope.resolve(['count']);
      if (!count) {
        this.issues.push({
          code: 'invalid_stage',
          stage: 'top',
          message: 'top N needs a field: top N by FIELD',
          span: st.span,
          hint: 'e.g. top 10 by dev (most frequent devices) or top 10 by len (largest packets)',
        });
        return rel;
      }
      if (rel.limit !== null) rel = this.wrap(rel);
      // Ties keep the rows' own order (e.g. by key).
      const order = [{ sql: count.sql, desc: true }, ...(rel.order ?? rel.defaultOrder).filter((o) => o.sql !== count.sql)];
      return { ...rel, order, limit: this.intParam(BigInt(st.n), 'BIGINT') };
    }
    if (st.by.length === 1) {
      const scope = rel.projection ? rowScope(rel.projection.map((p) => ({ ...p, sql: quoteIdent(p.name) }))) : rel.scope;
      const t = this.term(st.by[0]!, scope, rel.projection ? rel.scope : undefined);
      if (t.def.measure) {
        if (rel.limit !== null) rel = this.wrap(rel);
        const order = [{ sql: t.sql, desc: true }, ...(rel.order ?? rel.defaultOrder).filter((o) => o.sql !== t.sql)];
        return { ...rel, order, limit: this.intParam(BigInt(st.n), 'BIGINT') };
      }
    }
    return this.countBy(rel, st.by, st.n);
  }

  private numericTerm(rel: Rel, o: Operand, stage: string): Term | undefined {
    const t = this.term(o, rel.scope);
    if (t.sql === BAD) return undefined;
    if (!NUMERIC_KINDS.has(t.def.kind) || t.def.kind === 'track') {
      this.issues.push({
        code: 'type_mismatch',
        field: t.def.name,
        expected: 'a number',
        found: KIND_NOUN[t.def.kind],
        message: `${stage} needs a numeric field; '${t.def.name}' is ${KIND_NOUN[t.def.kind]}`,
        span: o.span,
        hint: `to count rows per value: count by ${t.def.name}`,
      });
      return undefined;
    }
    return t;
  }

  private stats(rel: Rel, operand: Operand, by: Operand[]): Rel {
    rel = this.prepareAggregate(rel);
    const t = this.numericTerm(rel, operand, 'stats');
    const keys = this.keyTerms(rel, by);
    if (!t) return rel;
    const x = t.sql;
    const keySel = keys.map((k) => `${k.term.sql} AS ${quoteIdent(k.name)}, `).join('');
    const inner = `SELECT ${keySel}count(${x}) AS count, min(${x}) AS min, round(avg(${x}), 2) AS avg,
       quantile_disc(${x}, [0.5, 0.9, 0.99]) AS _q, max(${x}) AS max
${this.aggregateFrom(rel)}${keys.length > 0 ? '\nGROUP BY ALL' : ''}`;
    const keyOut = keys.map((k) => `${quoteIdent(k.name)}, `).join('');
    const sql = `SELECT ${keyOut}count, min, avg, _q[1] AS p50, _q[2] AS p90, _q[3] AS p99, max FROM (${inner}) AS _s${++this.n}`;
    const like = (name: string, kind?: Kind): FieldDef => ({ ...t.def, name, sql: name, ...(kind ? { kind, type: 'DOUBLE' } : {}), measure: true });
    const columns: FieldDef[] = [
      ...keys.map((k) => ({ ...k.term.def, name: k.name, sql: quoteIdent(k.name) })),
      { name: 'count', sql: 'count', type: 'BIGINT', kind: 'int', measure: true, doc: 'number of values' },
      like('min'),
      like('avg', t.def.kind === 'int' ? 'float' : t.def.kind),
      like('p50'),
      like('p90'),
      like('p99'),
      like('max'),
    ];
    return this.rowsRel(sql, columns, keys.map((k) => ({ sql: quoteIdent(k.name), desc: false })));
  }

  private histogram(rel: Rel, st: Extract<Stage, { kind: 'histogram' }>): Rel {
    rel = this.prepareAggregate(rel);
    const t = this.numericTerm(rel, st.operand, 'histogram');
    if (!t) return rel;
    const x = t.sql;
    const integer = t.def.kind !== 'float';
    let width: string;
    if (st.every) {
      const v = st.every.value;
      const timeKind = t.def.kind === 'duration' || t.def.kind === 'ts' || t.def.kind === 'time';
      if (v.type === 'duration' && timeKind) width = this.intParam(v.ns, 'BIGINT');
      else if (v.type === 'int' && v.value > 0n) width = this.intParam(v.value, 'BIGINT');
      else if (v.type === 'float' && v.value > 0 && !integer) width = `CAST(${this.param(v.value)} AS DOUBLE)`;
      else {
        this.issues.push({
          code: 'type_mismatch',
          field: t.def.name,
          expected: timeKind ? 'a duration or a positive number' : integer ? 'a positive whole number' : 'a positive number',
          found: VALUE_NOUN[v.type],
          message: `histogram of '${t.def.name}' needs a bucket width that is ${timeKind ? 'a duration or a positive number' : integer ? 'a positive whole number' : 'a positive number'}`,
          span: st.every.span,
          hint: timeKind ? `histogram ${t.def.name} every 1ms` : `histogram ${t.def.name} every 100`,
        });
        return rel;
      }
    } else {
      // About 20 buckets of a round width (1, 2 or 5 × 10^k).
      const range = `(SELECT (max(${x}) - min(${x}))::DOUBLE / 20 AS r ${this.aggregateFrom(rel)})`;
      const nice = `(SELECT CASE WHEN r IS NULL OR r <= 0 THEN 1 ELSE pow(10, floor(log10(r))) * CASE WHEN r / pow(10, floor(log10(r))) <= 1 THEN 1 WHEN r / pow(10, floor(log10(r))) <= 2 THEN 2 WHEN r / pow(10, floor(log10(r))) <= 5 THEN 5 ELSE 10 END END FROM ${range} AS _r)`;
      width = integer ? `greatest(1, CAST(${nice} AS BIGINT))` : nice;
    }
    const bucket = integer
      ? `CAST(${x}::HUGEINT - ((${x}::HUGEINT % _w) + _w) % _w AS ${t.def.type})`
      : `floor(${x} / _w) * _w`;
    const name = operandName(st.operand);
    const sql = `SELECT ${bucket} AS ${quoteIdent(name)}, count(*) AS count
FROM (SELECT *, ${width} AS _w ${this.aggregateFrom(rel)}) AS _h${++this.n}
WHERE ${x} IS NOT NULL
GROUP BY ALL`;
    const columns: FieldDef[] = [
      { ...t.def, name, sql: quoteIdent(name), measure: true },
      { name: 'count', sql: 'count', type: 'BIGINT', kind: 'int', measure: true, doc: 'number of values in the bucket' },
    ];
    return this.rowsRel(sql, columns, [{ sql: quoteIdent(name), desc: false }]);
  }

  ////  conditions

  private cond(e: Expr, scope: Scope): string {
    switch (e.kind) {
      case 'and':
      case 'or':
        return `(${this.cond(e.left, scope)} ${e.kind.toUpperCase()} ${this.cond(e.right, scope)})`;
      case 'not':
        // Two-valued logic: a condition on a missing field is false, so its negation is true.
        return `((${this.cond(e.expr, scope)}) IS NOT TRUE)`;
      case 'truth':
        return this.truth(e.operand, scope);
      case 'cmp':
        return this.compare(e.op, e.opSpan, e.left, e.right, scope, e.span);
      case 'in': {
        const t = this.term(e.operand, scope);
        if (t.sql === BAD) return BAD;
        const sql = this.inList(t, e.values, scope, e.span);
        return e.negated ? `((${sql}) IS NOT TRUE)` : sql;
      }
      case 'between': {
        const t = this.term(e.operand, scope);
        if (t.sql === BAD) return BAD;
        const sql = this.between(t, e.low, e.high, scope);
        return e.negated ? `((${sql}) IS NOT TRUE)` : sql;
      }
      case 'prim':
        return this.primitive(e, scope);
    }
  }

  /** A lone operand as a condition: a boolean field, a present field or section, a protocol name, any()/all(). */
  private truth(o: Operand, scope: Scope): string {
    if (o.kind === 'lit') {
      if (o.value.type === 'bool') return `CAST(${this.param(o.value.value)} AS BOOLEAN)`;
      return this.issue({
        code: 'invalid_condition',
        message: `${valueText(o.value)} is a value, not a condition`,
        span: o.span,
        hint: `compare a field with it: FIELD = ${valueText(o.value)}`,
      });
    }
    if (o.kind === 'field' && o.path.length === 1 && !scope.resolve(o.path)) {
      const name = o.path[0]!.toLowerCase();
      const proto = scope.resolve(['proto']);
      if (proto && (PROTOCOLS as readonly string[]).includes(name)) return `${proto.sql} = ${this.param(name)}`;
    }
    const t = this.term(o, scope);
    if (t.sql === BAD) return BAD;
    if (t.def.kind === 'bool') return t.sql;
    return `${t.sql} IS NOT NULL`;
  }

  /** The SQL of a field, or of a series function's value (tracks). */
  private term(o: Operand, scope: Scope, fallback?: Scope): Term {
    if (o.kind === 'call') return this.call(o, scope);
    if (o.kind === 'lit') {
      this.issue({
        code: 'invalid_condition',
        message: `expected a field, found the value ${valueText(o.value)}`,
        span: o.span,
      });
      return { sql: BAD, def: placeholder(), span: o.span };
    }
    const def = scope.resolve(o.path) ?? fallback?.resolve(o.path);
    if (def) return { sql: def.sql, def, span: o.span };
    this.unknownField(o, scope);
    return { sql: BAD, def: placeholder(), span: o.span };
  }

  private unknownField(o: FieldRef, scope: Scope): void {
    const name = o.path.join('.');
    let sug = suggest(name, scope.names().filter((n) => (o.path.length === 1 ? !n.includes('.') || n.split('.').length === 2 : true)));
    let hint: string | undefined;
    // A known section with an unknown field: suggest among that section's fields.
    const parent = o.path.length > 1 ? scope.resolve(o.path.slice(0, -1)) : undefined;
    if (parent?.children) {
      const fields = parent.children.map((c) => `${parent.name}.${c}`);
      sug = suggest(name, fields);
      if (sug.length === 0) hint = `fields of ${parent.name}: ${parent.children.join(', ')}`;
    }
    const elsewhere = (['tracks', 'upcalls'] as const).find((n) => n !== scope.name && (n === 'tracks' ? trackScope : upcallScope).resolve(o.path));
    if (scope.name === 'events' && elsewhere) {
      hint = `'${name}' is a field of ${elsewhere}: ${elsewhere} where ${name} ...`;
    }
    if (scope.name === 'tracks' && eventScope.resolve(o.path)) {
      hint = `'${name}' is a field of events; on tracks, ask about the series' events: any(${name} = ...), first(${name}), last(${name})`;
    } else if (scope.name === 'rows') {
      hint = `after aggregating, the fields are the columns: ${scope.names().join(', ')}`;
    } else if (scope.name === 'upcalls' && !hint) {
      hint = `upcall fields: ${scope.names().join(', ')}`;
    }
    this.issues.push({
      code: 'unknown_field',
      name,
      suggestions: sug,
      message: `unknown field '${name}'${didYouMean(sug)}`,
      span: o.span,
      ...(hint ? { hint } : {}),
    });
  }

  ////  series functions (tracks)

  private call(c: CallRef, scope: Scope): Term {
    const fn = c.fn.toLowerCase();
    const bad = { sql: BAD, def: placeholder(), span: c.span };
    if (!SERIES_FUNCTIONS.includes(fn)) {
      const sug = suggest(c.fn, SERIES_FUNCTIONS);
      this.issue({
        code: 'unknown_function',
        name: c.fn,
        suggestions: sug,
        message: `unknown function '${c.fn}'${didYouMean(sug)}`,
        span: c.fnSpan,
        hint: 'functions: any(cond), all(cond), first(field), last(field), on tracks',
      });
      return bad;
    }
    const events = scope.events;
    if (!events) {
      this.issue({
        code: 'misplaced_function',
        name: fn,
        message: `${fn}() applies to the events of a packet series: use it on tracks`,
        span: c.fnSpan,
        hint: `tracks where ${fn}(...)`,
      });
      return bad;
    }
    const alias = (sql: string): string => {
      const found = this.extras.find((x) => x.sql === sql);
      if (found) return found.alias;
      const a = `_x${this.extras.length + 1}`;
      this.extras.push({ sql, alias: a });
      return a;
    };
    if (fn === 'any' || fn === 'all') {
      const cond = this.cond(c.arg, events);
      if (cond === BAD) return bad;
      const agg = fn === 'any' ? `coalesce(bool_or(${cond}), false)` : `coalesce(bool_and(coalesce(${cond}, false)), false)`;
      const name = alias(agg);
      return { sql: name, def: { name: `${fn}()`, sql: name, type: 'BOOLEAN', kind: 'bool', doc: '' }, span: c.span };
    }
    // first(field) / last(field): the first/last value the series' events have for it.
    if (c.arg.kind !== 'truth' || c.arg.operand.kind !== 'field') {
      this.issue({
        code: 'invalid_condition',
        message: `${fn}() takes a field, e.g. ${fn}(dev)`,
        span: c.arg.span,
      });
      return bad;
    }
    const t = this.term(c.arg.operand, events);
    if (t.sql === BAD) return bad;
    const agg = `${fn === 'first' ? 'arg_min' : 'arg_max'}(${t.sql}, eid) FILTER (WHERE ${t.sql} IS NOT NULL)`;
    const name = alias(agg);
    return { sql: name, def: { ...t.def, name: `${fn}(${c.arg.operand.path.join('.')})`, sql: name }, span: c.span };
  }

  /**
   * `any(c)` conjuncts of the first `where` on tracks, as semi-joins applied before
   * aggregating. Returns true when every conjunct was such a prefilter.
   */
  private prefilterTracks(e: Expr): boolean {
    const conjuncts: Expr[] = [];
    const walk = (x: Expr): void => {
      if (x.kind === 'and') {
        walk(x.left);
        walk(x.right);
      } else conjuncts.push(x);
    };
    walk(e);
    let all = true;
    for (const c of conjuncts) {
      if (c.kind === 'truth' && c.operand.kind === 'call' && c.operand.fn.toLowerCase() === 'any') {
        const issuesBefore = this.issues.length;
        const paramsBefore = this.params.length;
        const pendingBefore = this.pending.size;
        const cond = this.cond(c.operand.arg, eventScope);
        if (this.issues.length > issuesBefore || this.pending.size > pendingBefore || cond === BAD) {
          // Reported again when the condition itself is compiled.
          this.issues.length = issuesBefore;
          this.params.length = paramsBefore;
          all = false;
          continue;
        }
        this.prefilter.push(cond);
      } else all = false;
    }
    return all;
  }

  ////  comparisons

  private compare(op: CompareOp, opSpan: Span, leftO: Operand, rightO: Operand, scope: Scope, span: Span): string {
    if (leftO.kind === 'lit' && rightO.kind !== 'lit') return this.compare(FLIP[op], opSpan, rightO, leftO, scope, span);
    if (leftO.kind === 'lit') {
      return this.issue({
        code: 'invalid_condition',
        message: 'a comparison needs a field on one side',
        span,
        hint: `e.g. len ${op} ${valueText((rightO as { value: Value }).value)}`,
      });
    }
    const left = this.term(leftO, scope);
    if (left.sql === BAD) return BAD;
    const rhs = this.rhsOperand(left, rightO, scope);
    if (rhs === 'bad') return BAD;
    if (rhs.kind === 'field') return this.compareFields(op, opSpan, left, rhs.term);
    return this.compareValue(op, opSpan, left, rhs.value, rightO.span);
  }

  /**
   * The right side of a comparison with `left`: a value, or another field. A bare name is
   * a value of the left field's domain when it is one (`reason = NO_SOCKET`), else a field.
   */
  private rhsOperand(left: Term, o: Operand, scope: Scope): { kind: 'value'; value: Value } | { kind: 'field'; term: Term } | 'bad' {
    if (o.kind === 'lit') return { kind: 'value', value: o.value };
    if (o.kind === 'call') {
      const t = this.term(o, scope);
      return t.sql === BAD ? 'bad' : { kind: 'field', term: t };
    }
    if (o.path.length === 1) {
      const r = this.bareName(left.def, o.path[0]!, o.span, scope);
      if (r === 'bad') return 'bad';
      if (r !== 'field') return { kind: 'value', value: { type: 'string', value: r } };
    }
    const t = this.term(o, scope);
    return t.sql === BAD ? 'bad' : { kind: 'field', term: t };
  }

  /** Resolve a bare name against a field's domain: the value it stands for, 'field', or 'bad' (issue or pending). */
  private bareName(def: FieldDef, name: string, span: Span, scope: Scope): string | 'field' | 'bad' {
    const domain = def.domain ?? def.elem?.domain;
    if (!domain) return 'field';
    let known = this.catalog.values(domain);
    let m = matchValue(name, known.values);
    if (m === undefined && this.catalog.addKernel(domain)) {
      known = this.catalog.values(domain);
      m = matchValue(name, known.values);
    }
    if (m !== undefined) return m;
    if (domain.probe) {
      const hits = matchProbe(name, known.values);
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) {
        this.issue({
          code: 'unknown_value',
          field: def.name,
          value: name,
          suggestions: hits,
          message: `'${name}' matches several probes: ${orList(hits)}`,
          span,
          hint: `write one of them: ${def.name} = "${hits[0]}"`,
        });
        return 'bad';
      }
    }
    if (scope.resolve([name])) return 'field';
    if (!known.complete) {
      this.pending.set(domain.key, domain);
      return 'bad';
    }
    const sug = suggest(name, known.values);
    const dataOnly = domain.fixed === undefined;
    const label = domain.key === 'reason' ? 'drop reason' : domain.key === 'proto' ? 'protocol' : def.name;
    const inData = domain.dataSql !== undefined && !domain.closed;
    const message = dataOnly
      ? `no ${label} '${name}' in the data${didYouMean(sug)}`
      : `unknown ${label} '${name}'${domain.kernelDropReasons ? ' (neither the kernel nor the data know it)' : ''}${didYouMean(sug)}`;
    const quote = `quote a value to match it as written: ${def.name} = "${name}"`;
    const hint =
      known.values.length > 0 && known.values.length <= 12
        ? `${def.name} is one of ${orList(known.values)}${inData ? `; ${quote}` : ''}`
        : inData
          ? quote
          : undefined;
    this.issue({
      code: 'unknown_value',
      field: def.name,
      value: name,
      suggestions: sug,
      message,
      span,
      ...(hint ? { hint } : {}),
    });
    return 'bad';
  }

  private opIssue(op: string, opSpan: Span, def: FieldDef, why: string, hint?: string): string {
    return this.issue({
      code: 'invalid_operator',
      op,
      field: def.name,
      message: `'${op}' does not apply to ${def.name} (${KIND_NOUN[def.kind]}): ${why}`,
      span: opSpan,
      ...(hint ? { hint } : {}),
    });
  }

  private mismatch(def: FieldDef, v: Value, span: Span, hint?: string): string {
    const h =
      hint ??
      (def.name === 'proto' && v.type === 'int'
        ? `proto is a name (proto = udp); the protocol number is ip_proto: ip_proto = ${valueText(v)}`
        : def.kind === 'string' && (v.type === 'int' || v.type === 'float')
        ? `quote it: ${def.name} = "${valueText(v)}"`
        : def.kind === 'ts' && v.type === 'duration'
          ? `for time since the first event use elapsed: elapsed > ${valueText(v)}`
          : def.kind === 'int' && v.type === 'string' && /^-?\d+$/.test(v.value)
            ? `write the number without quotes: ${def.name} = ${v.value}`
            : undefined);
    return this.issue({
      code: 'type_mismatch',
      field: def.name,
      expected: KIND_NOUN[def.kind],
      found: VALUE_NOUN[v.type],
      message: `${def.name} is ${KIND_NOUN[def.kind]}, not ${VALUE_NOUN[v.type]}`,
      span,
      ...(h ? { hint: h } : {}),
    });
  }

  private compareFields(op: CompareOp, opSpan: Span, l: Term, r: Term): string {
    const group = (k: Kind) => (NUMERIC_KINDS.has(k) ? 'num' : TEXT_KINDS.has(k) ? 'text' : k);
    if (group(l.def.kind) !== group(r.def.kind) || l.def.kind === 'list' || l.def.kind === 'struct') {
      return this.issue({
        code: 'type_mismatch',
        field: l.def.name,
        expected: KIND_NOUN[l.def.kind],
        found: KIND_NOUN[r.def.kind],
        message: `cannot compare ${l.def.name} (${KIND_NOUN[l.def.kind]}) with ${r.def.name} (${KIND_NOUN[r.def.kind]})`,
        span: spanOf(l.span, r.span),
        hint: `to compare with the text '${r.def.name}', quote it: ${l.def.name} = "${r.def.name}"`,
      });
    }
    if (op === '~' || op === '!~') {
      if (group(l.def.kind) !== 'text') return this.opIssue(op, opSpan, l.def, '~ matches text against a glob');
      return op === '~' ? `${l.sql} GLOB ${r.sql}` : `((${l.sql} GLOB ${r.sql}) IS NOT TRUE)`;
    }
    if (op === '!=') return `${l.sql} IS DISTINCT FROM ${r.sql}`;
    return `${l.sql} ${op} ${r.sql}`;
  }

  private compareValue(op: CompareOp, opSpan: Span, l: Term, v: Value, vSpan: Span): string {
    const def = l.def;
    if (def.kind === 'struct' || def.kind === 'bytes') {
      const sub = def.children ? `: ${def.children.map((c) => `${def.name}.${c}`).slice(0, 6).join(', ')}` : '';
      return this.opIssue(op, opSpan, def, `compare one of its fields${sub}`);
    }
    if (def.kind === 'list') return this.listCompare(op, opSpan, l, v, vSpan);
    if (op === '~' || op === '!~') {
      if (!TEXT_KINDS.has(def.kind)) return this.opIssue(op, opSpan, def, '~ matches text against a glob', NUMERIC_KINDS.has(def.kind) ? `compare numbers with = != < <= > >= or between` : undefined);
      if (v.type !== 'string') return this.mismatch(def, v, vSpan, `a glob is quoted text: ${def.name} ~ "${valueText(v)}*"`);
      const x = def.kind === 'mac' ? displaySql(def, l.sql) : l.sql;
      const g = `${x} GLOB ${this.param(v.value)}`;
      return op === '~' ? g : `((${g}) IS NOT TRUE)`;
    }
    const ordering = op === '<' || op === '<=' || op === '>' || op === '>=';
    if (ordering && (def.kind === 'addr' || def.kind === 'mac' || def.kind === 'bool')) {
      return this.opIssue(op, opSpan, def, 'only = != ~ in between apply', def.kind === 'addr' ? `${def.name} in 10.0.0.0/8` : undefined);
    }
    if (v.type === 'cidr') {
      if (def.kind !== 'addr') return this.mismatch(def, v, vSpan);
      if (ordering) return this.opIssue(op, opSpan, def, 'a prefix matches with = or in');
      const p = this.cidr(l.sql, v);
      return op === '=' ? p : `((${p}) IS NOT TRUE)`;
    }
    // A date against `ts`: compare the wall clock.
    if (v.type === 'time' && def.kind === 'ts' && def.wallSql) {
      return this.binary(op, def.wallSql, this.intParam(v.epochNs, 'BIGINT'));
    }
    const rhs = this.valueSql(def, v, vSpan);
    if (rhs === BAD) return BAD;
    return this.binary(op, l.sql, rhs);
  }

  private binary(op: CompareOp, l: string, r: string): string {
    return op === '!=' ? `${l} IS DISTINCT FROM ${r}` : `${l} ${op} ${r}`;
  }

  /** A value as SQL of the field's type. */
  private valueSql(def: { name: string; kind: Kind; type: string }, v: Value, span: Span): string {
    const d = def as FieldDef;
    switch (def.kind) {
      case 'int':
        if (v.type === 'int') return this.intParam(v.value, def.type);
        if (v.type === 'track') return this.intParam(v.value, def.type);
        if (v.type === 'float') return `CAST(${this.param(v.value)} AS DOUBLE)`;
        if (v.type === 'bool') return this.intParam(v.value ? 1n : 0n, def.type);
        return this.mismatch(d, v, span);
      case 'float':
        if (v.type === 'int') return `CAST(${this.param(Number(v.value))} AS DOUBLE)`;
        if (v.type === 'float') return `CAST(${this.param(v.value)} AS DOUBLE)`;
        return this.mismatch(d, v, span);
      case 'duration':
        if (v.type === 'duration') return this.intParam(v.ns, def.type);
        if (v.type === 'int') return this.intParam(v.value, def.type);
        if (v.type === 'float') return `CAST(${this.param(v.value)} AS DOUBLE)`;
        return this.mismatch(d, v, span, `durations are written 5ms, 1.5s, 200us`);
      case 'ts':
        if (v.type === 'int') return this.intParam(v.value, def.type);
        return this.mismatch(d, v, span, v.type === 'time' ? `compare dates with the wall clock: time >= ${v.text}` : undefined);
      case 'time':
        if (v.type === 'time') return this.intParam(v.epochNs, def.type);
        if (v.type === 'int') return this.intParam(v.value, def.type);
        return this.mismatch(d, v, span, 'dates are written 2024-05-01T10:00:00Z');
      case 'track':
        if (v.type === 'track' || v.type === 'int') return this.intParam(v.value, 'UHUGEINT');
        if (v.type === 'string' && /^#?[0-9a-fA-F]{1,32}$/.test(v.value)) return this.intParam(BigInt(`0x${v.value.replace('#', '')}`), 'UHUGEINT');
        return this.mismatch(d, v, span, 'write a tracking id as Retis prints it: #1baa83c42ba1ffff8e95c3b67c00');
      case 'string':
        if (v.type === 'string') return this.param(d.domain?.probe ? normalizeProbe(v.value) : v.value);
        if (v.type === 'probe') {
          if (!d.domain?.probe) return this.mismatch(d, v, span, `quote it: ${def.name} = "${v.text}"`);
          return this.param(v.text);
        }
        if (v.type === 'bool' || v.type === 'duration' || v.type === 'mac' || v.type === 'ip' || v.type === 'time') {
          return this.mismatch(d, v, span, `quote it: ${def.name} = "${valueText(v)}"`);
        }
        return this.mismatch(d, v, span);
      case 'addr':
        if (v.type === 'ip') return this.param(v.text);
        if (v.type === 'string') return this.param(v.value);
        return this.mismatch(d, v, span);
      case 'mac': {
        if (v.type === 'mac') return this.param(v.hex.toUpperCase());
        if (v.type === 'string' && /^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(v.value)) {
          const m = parseMac(v.value);
          if (m.type === 'mac') return this.param(m.hex.toUpperCase());
        }
        return this.mismatch(d, v, span, 'write a MAC address as aa:bb:cc:dd:ee:ff');
      }
      case 'bool':
        if (v.type === 'bool') return `CAST(${this.param(v.value)} AS BOOLEAN)`;
        if (v.type === 'int' && (v.value === 0n || v.value === 1n)) return `CAST(${this.param(v.value === 1n)} AS BOOLEAN)`;
        return this.mismatch(d, v, span);
      default:
        return this.mismatch(d, v, span);
    }
  }

  /** Is the address (text) in the prefix? Octet-aligned IPv4 prefixes are a text prefix test. */
  private cidr(x: string, v: Extract<Value, { type: 'cidr' }>): string {
    if (v.family === 4) {
      if (v.prefix === 0) return `(contains(${x}, '.') AND NOT contains(${x}, ':'))`;
      if (v.prefix % 8 === 0) {
        const octets = v.text.split('/')[0]!.split('.').slice(0, v.prefix / 8);
        return `starts_with(${x}, ${this.param(`${octets.join('.')}.`)})`;
      }
      const num = [1, 2, 3, 4].map((i) => `(TRY_CAST(split_part(${x}, '.', ${i}) AS UBIGINT) << ${8 * (4 - i)})`).join(' + ');
      return `(contains(${x}, '.') AND NOT contains(${x}, ':') AND (${num}) BETWEEN ${this.intParam(v.lo, 'UBIGINT')} AND ${this.intParam(v.hi, 'UBIGINT')})`;
    }
    // IPv6: expand to 32 hex digits (fixed width, so text order is numeric order).
    const part = (i: number) => `CASE WHEN split_part(${x}, '::', ${i}) = '' THEN []::VARCHAR[] ELSE string_split(split_part(${x}, '::', ${i}), ':') END`;
    const groups = `CASE WHEN contains(${x}, '::') THEN list_concat(${part(1)}, list_transform(range(8 - len(list_filter(string_split(${x}, ':'), g -> g <> ''))), g -> '0'), ${part(2)}) ELSE string_split(${x}, ':') END`;
    const hex = `lower(array_to_string(list_transform(${groups}, g -> lpad(g, 4, '0')), ''))`;
    const h = (n: bigint) => n.toString(16).padStart(32, '0');
    return `(contains(${x}, ':') AND ${hex} BETWEEN ${this.param(h(v.lo))} AND ${this.param(h(v.hi))})`;
  }

  private listCompare(op: CompareOp, opSpan: Span, l: Term, v: Value, vSpan: Span): string {
    const elem = l.def.elem!;
    const elemDef = { name: l.def.name, kind: elem.kind, type: elem.type };
    if (op === '~' || op === '!~') {
      if (v.type !== 'string') return this.mismatch(l.def, v, vSpan, `a glob is quoted text: ${l.def.name} ~ "${valueText(v)}*"`);
      const p = `len(list_filter(${l.sql}, x -> x GLOB ${this.param(v.value)})) > 0`;
      return op === '~' ? p : `((${p}) IS NOT TRUE)`;
    }
    if (op !== '=' && op !== '!=') return this.opIssue(op, opSpan, l.def, 'a list is tested with = (contains), != or ~', `${l.def.name} = ${valueText(v)}`);
    const x = this.valueSql(elemDef, v, vSpan);
    if (x === BAD) return BAD;
    const p = `list_contains(${l.sql}, ${x})`;
    return op === '=' ? p : `((${p}) IS NOT TRUE)`;
  }

  private inList(t: Term, values: Operand[], scope: Scope, span: Span): string {
    const simple: string[] = [];
    const preds: string[] = [];
    const elemDef = t.def.kind === 'list' ? { name: t.def.name, kind: t.def.elem!.kind, type: t.def.elem!.type } : t.def;
    if (t.def.kind === 'struct' || t.def.kind === 'bytes') return this.opIssue('in', span, t.def, 'compare one of its fields');
    for (const o of values) {
      const r = this.rhsOperand(t, o, scope);
      if (r === 'bad') return BAD;
      if (r.kind === 'field') {
        simple.push(r.term.sql);
        continue;
      }
      const v = r.value;
      if (v.type === 'cidr' && t.def.kind === 'addr') {
        preds.push(this.cidr(t.sql, v));
        continue;
      }
      if (v.type === 'time' && t.def.kind === 'ts' && t.def.wallSql) {
        preds.push(`${t.def.wallSql} = ${this.intParam(v.epochNs, 'BIGINT')}`);
        continue;
      }
      const x = this.valueSql(elemDef, v, o.span);
      if (x === BAD) return BAD;
      simple.push(x);
    }
    if (simple.length > 0) {
      if (t.def.kind === 'list') preds.unshift(`list_has_any(${t.sql}, [${simple.join(', ')}])`);
      else preds.unshift(simple.length === 1 ? `${t.sql} = ${simple[0]}` : `${t.sql} IN (${simple.join(', ')})`);
    }
    return preds.length === 1 ? preds[0]! : `(${preds.join(' OR ')})`;
  }

  private between(t: Term, lowO: Operand, highO: Operand, scope: Scope): string {
    const def = t.def;
    if (!NUMERIC_KINDS.has(def.kind) && def.kind !== 'string') {
      return this.opIssue('between', spanOf(lowO.span, highO.span), def, 'between applies to numbers, times and text');
    }
    const side = (o: Operand): { sql: string; wall: boolean } => {
      const r = this.rhsOperand(t, o, scope);
      if (r === 'bad') return { sql: BAD, wall: false };
      if (r.kind === 'field') return { sql: r.term.sql, wall: false };
      if (r.value.type === 'time' && def.kind === 'ts' && def.wallSql) return { sql: this.intParam(r.value.epochNs, 'BIGINT'), wall: true };
      return { sql: this.valueSql(def, r.value, o.span), wall: false };
    };
    const lo = side(lowO);
    const hi = side(highO);
    if (lo.sql === BAD || hi.sql === BAD) return BAD;
    if (lo.wall !== hi.wall) {
      return this.issue({
        code: 'type_mismatch',
        field: def.name,
        expected: 'two dates or two numbers',
        found: 'a date and a number',
        message: `between needs two dates or two numbers for ${def.name}`,
        span: spanOf(lowO.span, highO.span),
      });
    }
    return `${lo.wall ? def.wallSql : t.sql} BETWEEN ${lo.sql} AND ${hi.sql}`;
  }

  /** `[src|dst] host|net|port VALUE`, as tcpdump. */
  private primitive(e: Extract<Expr, { kind: 'prim' }>, scope: Scope): string {
    const names = e.what === 'port' ? ['sport', 'dport'] : ['saddr', 'daddr'];
    const pick = e.dir === 'src' ? [names[0]!] : e.dir === 'dst' ? [names[1]!] : names;
    const o = e.value;
    if (o.kind !== 'lit') {
      return this.issue({
        code: 'type_mismatch',
        field: e.what,
        expected: e.what === 'port' ? 'a port number' : 'an IP address or prefix',
        found: 'a name',
        message: `${e.what} needs ${e.what === 'port' ? 'a port number' : 'an IP address or prefix'}`,
        span: o.span,
        ...(e.what === 'host' ? { hint: 'to select the recording host by name: host = "node1"' } : {}),
      });
    }
    const v = o.value;
    const ok = e.what === 'port' ? v.type === 'int' : e.what === 'net' ? v.type === 'cidr' || v.type === 'ip' : v.type === 'ip' || v.type === 'cidr';
    if (!ok) {
      return this.issue({
        code: 'type_mismatch',
        field: e.what,
        expected: e.what === 'port' ? 'a port number' : 'an IP address or prefix',
        found: VALUE_NOUN[v.type],
        message: `${e.what} needs ${e.what === 'port' ? 'a port number' : e.what === 'net' ? 'an address prefix (10.0.0.0/8)' : 'an IP address'}, not ${VALUE_NOUN[v.type]}`,
        span: o.span,
        ...(e.what === 'host' && v.type === 'string' ? { hint: `to select the recording host by name: host = ${valueText(v)}` } : {}),
      });
    }
    const preds: string[] = [];
    for (const n of pick) {
      const def = scope.resolve([n]);
      if (!def) {
        return this.issue({
          code: 'unknown_field',
          name: n,
          suggestions: [],
          message: `${e.what} needs the field '${n}', which ${scope.name === 'rows' ? 'these rows do' : `${scope.name} do`} not have`,
          span: e.span,
        });
      }
      preds.push(this.compareValue('=', e.span, { sql: def.sql, def, span: e.span }, v, o.span));
    }
    if (preds.includes(BAD)) return BAD;
    return preds.length === 1 ? preds[0]! : `(${preds.join(' OR ')})`;
  }
}

////  HELPERS  ////

const TRACK_COLUMNS: FieldDef[] = TRACK_COLUMN_NAMES.map((n) => trackScope.resolve([n])!);

const UPCALL_COLUMNS: FieldDef[] = upcallScope.names().map((n) => upcallScope.resolve([n])!);

/** `expr AS "name"`, or just the column when it already is one. */
function selectItem(c: FieldDef, display: boolean): string {
  const x = display ? displaySql(c, c.sql) : c.sql;
  const q = quoteIdent(c.name);
  return x === q || x === c.name && /^[a-z_][a-z0-9_]*$/.test(c.name) ? q : `${x} AS ${q}`;
}

function placeholder(): FieldDef {
  return { name: '?', sql: BAD, type: 'VARCHAR', kind: 'string', doc: '' };
}

/** Column name for an operand: the path as typed, or `fn(path)`. */
function operandName(o: Operand): string {
  if (o.kind === 'field') return o.path.join('.');
  if (o.kind === 'call') {
    const a = o.arg;
    const inner = a.kind === 'truth' && a.operand.kind === 'field' ? a.operand.path.join('.') : '...';
    return `${o.fn.toLowerCase()}(${inner})`;
  }
  return valueText(o.value);
}

/**
 * Compile a query's AST. Bare names that need the data to be checked come back as
 * `pending` domains: fetch them into the catalog (see `loadDomains`) and compile again.
 */
export function compile(q: Query, catalog: Catalog, opts: CompileOptions = {}): CompileResult {
  const c = new Compiler(catalog, opts);
  const out = c.query(q);
  if (out && c.issues.length === 0 && c.pending.size === 0) return { ok: true, query: out };
  return { ok: false, issues: c.issues, pending: [...c.pending.values()] };
}
