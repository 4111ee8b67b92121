/**
 * The AST, and the visitor that builds it from the parser's CST.
 *
 * The AST is what the compiler reads: every node carries the span of query text it
 * came from, so that any later problem points at the right place. Literal tokens are
 * turned into typed values here (an IPv4 prefix becomes a numeric range, `5ms` becomes
 * 5,000,000 ns); a malformed one becomes an `invalid_literal` issue.
 */
import { tokenMatcher, type CstElement, type CstNode, type IToken } from 'chevrotain';
import * as T from '../lexer.ts';
import { spanOf, type LiteralKind, type QueryIssue, type Span } from '../errors.ts';
import {
  normalizeProbe,
  parseAddress,
  parseDateTime,
  parseDuration,
  parseIntLiteral,
  parseMac,
  parseNumber,
  unquote,
  ValueError,
  type Value,
} from '../values.ts';

////  AST  ////

export interface Query {
  source: { name: string; span: Span };
  stages: Stage[];
  span: Span;
}

export interface FieldRef {
  kind: 'field';
  /** Path segments as typed: `ct.orig.ip.src` → ['ct', 'orig', 'ip', 'src']. */
  path: string[];
  span: Span;
}
export interface LiteralRef {
  kind: 'lit';
  value: Value;
  span: Span;
}
export interface CallRef {
  kind: 'call';
  fn: string;
  fnSpan: Span;
  arg: Expr;
  span: Span;
}
export type Operand = FieldRef | LiteralRef | CallRef;

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | '~' | '!~';

export type Expr =
  | { kind: 'and' | 'or'; left: Expr; right: Expr; span: Span }
  | { kind: 'not'; expr: Expr; span: Span }
  | { kind: 'cmp'; op: CompareOp; opSpan: Span; left: Operand; right: Operand; span: Span }
  | { kind: 'in'; negated: boolean; operand: Operand; values: Operand[]; span: Span }
  | { kind: 'between'; negated: boolean; operand: Operand; low: Operand; high: Operand; span: Span }
  /** A lone operand used as a condition: `drop`, `udp`, `any(drop)`, `nft`. */
  | { kind: 'truth'; operand: Operand; span: Span }
  /** tcpdump-style `[src|dst] host|net|port VALUE`. */
  | { kind: 'prim'; dir: 'src' | 'dst' | null; what: 'host' | 'net' | 'port'; value: Operand; span: Span };

export interface OrderItem {
  operand: Operand;
  desc: boolean;
}
export interface FieldItem {
  operand: Operand;
  as?: { name: string; span: Span };
}

export type Stage =
  | { kind: 'where'; cond: Expr; span: Span }
  | { kind: 'count'; by: Operand[]; span: Span }
  | { kind: 'top'; n: number; by: Operand[]; span: Span }
  | { kind: 'sort'; span: Span }
  | { kind: 'fields'; items: FieldItem[]; span: Span }
  | { kind: 'order'; items: OrderItem[]; span: Span }
  | { kind: 'limit'; n: number; span: Span }
  | { kind: 'stats'; operand: Operand; by: Operand[]; span: Span }
  | { kind: 'histogram'; operand: Operand; every?: LiteralRef; span: Span }
  | { kind: 'pcap'; file: string; span: Span };

export type StageKind = Stage['kind'];

////  CST ACCESS  ////

type Children = Record<string, CstElement[] | undefined>;

const isToken = (e: CstElement): e is IToken => (e as IToken).image !== undefined;

function tokens(c: Children, key: string): IToken[] {
  return (c[key] ?? []).filter(isToken);
}
function nodes(c: Children, key: string): CstNode[] {
  return (c[key] ?? []).filter((e): e is CstNode => !isToken(e));
}
function node(c: Children, key: string): CstNode {
  const n = nodes(c, key)[0];
  if (!n) throw new Error(`internal: CST node ${key} missing`);
  return n;
}
function tokenSpan(t: IToken): Span {
  return { start: t.startOffset, end: (t.endOffset ?? t.startOffset) + 1 };
}

/** Span of a CST node: from its first token to its last (the parser tracks node offsets). */
function cstSpan(n: CstNode): Span {
  const l = n.location;
  if (l && Number.isFinite(l.startOffset) && l.endOffset !== undefined && Number.isFinite(l.endOffset)) {
    return { start: l.startOffset, end: l.endOffset + 1 };
  }
  return { start: 0, end: 0 };
}

////  VISITOR  ////

/** Builds the AST; collects literal issues instead of stopping at the first. */
class AstBuilder {
  readonly issues: QueryIssue[] = [];

  query(n: CstNode): Query {
    const c = n.children;
    const src = tokens(c, 'source')[0]!;
    const stages: Stage[] = [];
    const where = nodes(c, 'where')[0];
    if (where) {
      const whereTok = tokens(c, 'Where')[0]!;
      stages.push({ kind: 'where', cond: this.orExpr(where), span: spanOf(tokenSpan(whereTok), cstSpan(where)) });
    }
    for (const s of nodes(c, 'stage')) stages.push(this.stage(s));
    return { source: { name: src.image, span: tokenSpan(src) }, stages, span: cstSpan(n) };
  }

  stage(n: CstNode): Stage {
    const [name, child] = Object.entries(n.children)[0]! as [string, CstNode[]];
    const s = child[0]!;
    const c = s.children;
    const span = cstSpan(s);
    switch (name) {
      case 'whereStage':
        return { kind: 'where', cond: this.orExpr(node(c, 'orExpr')), span };
      case 'countStage':
        return { kind: 'count', by: this.fieldList(c), span };
      case 'topStage':
        return { kind: 'top', n: this.count(tokens(c, 'NumberLit')[0]!), by: this.fieldList(c), span };
      case 'sortStage':
        return { kind: 'sort', span };
      case 'fieldsStage':
        return {
          kind: 'fields',
          items: nodes(c, 'fieldItem').map((f) => {
            const alias = tokens(f.children, 'alias')[0];
            const item: FieldItem = { operand: this.operand(node(f.children, 'operand')) };
            if (alias) item.as = { name: alias.image, span: tokenSpan(alias) };
            return item;
          }),
          span,
        };
      case 'orderStage':
        return {
          kind: 'order',
          items: nodes(c, 'orderItem').map((o) => ({
            operand: this.operand(node(o.children, 'operand')),
            desc: tokens(o.children, 'Desc').length > 0,
          })),
          span,
        };
      case 'limitStage':
        return { kind: 'limit', n: this.count(tokens(c, 'NumberLit')[0]!), span };
      case 'statsStage':
        return { kind: 'stats', operand: this.operand(node(c, 'operand')), by: this.fieldList(c), span };
      case 'histogramStage': {
        const lit = tokens(c, 'Literal')[0];
        const st: Stage = { kind: 'histogram', operand: this.operand(node(c, 'operand')), span };
        if (lit) st.every = { kind: 'lit', value: this.literal(lit), span: tokenSpan(lit) };
        return st;
      }
      case 'pcapStage': {
        const str = tokens(c, 'StringLit')[0];
        const file = str ? unquote(str.image) : this.path(node(c, 'path')).path.join('.');
        return { kind: 'pcap', file, span };
      }
    }
    throw new Error(`internal: unknown stage ${name}`);
  }

  /** A non-negative count (`top N`, `limit N`). */
  count(t: IToken): number {
    const v = parseNumber(t.image);
    if (v.type !== 'int' || v.value < 0n || v.value > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.issues.push({
        code: 'invalid_literal',
        literal: 'number',
        text: t.image,
        message: `'${t.image}' is not a count: expected a whole number 0 or more`,
        span: tokenSpan(t),
      });
      return 0;
    }
    return Number(v.value);
  }

  fieldList(c: Children): Operand[] {
    const list = nodes(c, 'fieldList')[0];
    return list ? nodes(list.children, 'operand').map((o) => this.operand(o)) : [];
  }

  path(n: CstNode): FieldRef {
    return { kind: 'field', path: tokens(n.children, 'Name').map((t) => t.image), span: cstSpan(n) };
  }

  orExpr(n: CstNode): Expr {
    const parts = nodes(n.children, 'andExpr').map((a) => this.andExpr(a));
    return parts.reduce((left, right) => ({ kind: 'or', left, right, span: spanOf(left.span, right.span) }));
  }

  andExpr(n: CstNode): Expr {
    const parts = nodes(n.children, 'notExpr').map((a) => this.notExpr(a));
    return parts.reduce((left, right) => ({ kind: 'and', left, right, span: spanOf(left.span, right.span) }));
  }

  notExpr(n: CstNode): Expr {
    const inner = nodes(n.children, 'notExpr')[0];
    if (inner) return { kind: 'not', expr: this.notExpr(inner), span: cstSpan(n) };
    return this.atom(node(n.children, 'atom'));
  }

  atom(n: CstNode): Expr {
    const c = n.children;
    const or = nodes(c, 'orExpr')[0];
    if (or) return this.orExpr(or);
    const prim = nodes(c, 'primitive')[0];
    if (prim) return this.primitive(prim);
    return this.predicate(node(c, 'predicate'));
  }

  primitive(n: CstNode): Expr {
    const c = n.children;
    const words = tokens(c, 'word');
    const lit = tokens(c, 'Literal')[0];
    const opNode = nodes(c, 'operand')[0];
    const span = cstSpan(n);
    const w0 = words[0]!.image.toLowerCase();
    const w1 = words[1]?.image.toLowerCase();
    let dir: 'src' | 'dst' | null = null;
    let what: string | undefined;
    let value: Operand | undefined;
    if (w0 === 'src' || w0 === 'dst') {
      dir = w0;
      if (w1 !== undefined) {
        what = w1;
        value = opNode ? this.operand(opNode) : undefined;
      } else {
        what = 'host';
        value = lit ? { kind: 'lit', value: this.literal(lit), span: tokenSpan(lit) } : undefined;
      }
    } else if (w0 === 'host' || w0 === 'net' || w0 === 'port') {
      what = w0;
      if (lit) value = { kind: 'lit', value: this.literal(lit), span: tokenSpan(lit) };
      else if (words[1]) value = { kind: 'field', path: [words[1].image], span: tokenSpan(words[1]) };
      if (opNode) value = undefined;
    }
    if ((what === 'host' || what === 'net' || what === 'port') && value) return { kind: 'prim', dir, what, value, span };
    // `dev eth0`: two things side by side with nothing between.
    const first = words[0]!;
    const second = words[1] ?? lit!;
    const rest = this.source.slice(second.startOffset, span.end);
    this.issues.push({
      code: 'syntax_error',
      expected: ['a comparison (= != < <= > >= ~)'],
      found: second.image,
      message: `expected a comparison after '${first.image}', found '${second.image}'`,
      span: tokenSpan(second),
      hint: `write ${first.image} = ${rest}`,
    });
    return { kind: 'truth', operand: { kind: 'lit', value: { type: 'bool', value: false }, span }, span };
  }

  predicate(n: CstNode): Expr {
    const c = n.children;
    const left = this.operand(node(c, 'left'));
    const span = cstSpan(n);
    const op = tokens(c, 'CompOp')[0];
    if (op) {
      const right = this.operand(node(c, 'right'));
      return { kind: 'cmp', op: compareOp(op), opSpan: tokenSpan(op), left, right, span };
    }
    const negated = tokens(c, 'Not').length > 0;
    if (tokens(c, 'In').length > 0) {
      const list = node(c, 'inList');
      return { kind: 'in', negated, operand: left, values: nodes(list.children, 'operand').map((o) => this.operand(o)), span };
    }
    if (tokens(c, 'Between').length > 0) {
      return { kind: 'between', negated, operand: left, low: this.operand(node(c, 'low')), high: this.operand(node(c, 'high')), span };
    }
    return { kind: 'truth', operand: left, span };
  }

  operand(n: CstNode): Operand {
    const c = n.children;
    const lit = tokens(c, 'Literal')[0];
    if (lit) return { kind: 'lit', value: this.literal(lit), span: tokenSpan(lit) };
    const call = nodes(c, 'call')[0];
    if (call) {
      const fn = tokens(call.children, 'fn')[0]!;
      return { kind: 'call', fn: fn.image, fnSpan: tokenSpan(fn), arg: this.orExpr(node(call.children, 'orExpr')), span: cstSpan(call) };
    }
    return this.path(node(c, 'path'));
  }

  literal(t: IToken): Value {
    const text = t.image;
    const fail = (literal: LiteralKind, e: unknown): Value => {
      this.issues.push({
        code: 'invalid_literal',
        literal,
        text,
        message: e instanceof ValueError ? e.message : `'${text}' is not valid`,
        span: tokenSpan(t),
      });
      return { type: 'string', value: text };
    };
    if (tokenMatcher(t, T.StringLit)) return { type: 'string', value: unquote(text) };
    if (tokenMatcher(t, T.True)) return { type: 'bool', value: true };
    if (tokenMatcher(t, T.False)) return { type: 'bool', value: false };
    if (tokenMatcher(t, T.NumberLit)) return parseNumber(text);
    if (tokenMatcher(t, T.ProbeLit)) return { type: 'probe', text: normalizeProbe(text) };
    if (tokenMatcher(t, T.TrackLit)) {
      const hex = text.slice(1).toLowerCase();
      if (hex.length > 32) return fail('track', new ValueError(`'${text}' is too long for a tracking id (at most 32 hex digits)`));
      return { type: 'track', value: BigInt(`0x${hex}`), text: `#${hex}` };
    }
    try {
      if (tokenMatcher(t, T.Ip4Lit)) return parseAddress(text, 4);
      if (tokenMatcher(t, T.Ip6Lit)) return parseAddress(text, 6);
      if (tokenMatcher(t, T.MacLit)) return parseMac(text);
      if (tokenMatcher(t, T.DurationLit)) return parseDuration(text);
      if (tokenMatcher(t, T.DateTimeLit)) return parseDateTime(text);
    } catch (e) {
      const kind: LiteralKind = tokenMatcher(t, T.Ip4Lit) || tokenMatcher(t, T.Ip6Lit)
        ? text.includes('/') ? 'cidr' : 'ip'
        : tokenMatcher(t, T.MacLit) ? 'mac' : tokenMatcher(t, T.DurationLit) ? 'duration' : 'time';
      return fail(kind, e);
    }
    return { type: 'string', value: text };
  }

  constructor(private readonly source: string) {}
}

function compareOp(t: IToken): CompareOp {
  if (tokenMatcher(t, T.Eq)) return '=';
  if (tokenMatcher(t, T.Ne)) return '!=';
  if (tokenMatcher(t, T.Le)) return '<=';
  if (tokenMatcher(t, T.Ge)) return '>=';
  if (tokenMatcher(t, T.Lt)) return '<';
  if (tokenMatcher(t, T.Gt)) return '>';
  if (tokenMatcher(t, T.NotGlob)) return '!~';
  return '~';
}

export interface AstResult {
  query: Query | undefined;
  issues: QueryIssue[];
}

/** Build the AST of a parsed query. */
export function buildAst(cst: CstNode, source: string): AstResult {
  const b = new AstBuilder(source);
  const query = b.query(cst);
  return { query: b.issues.length === 0 ? query : undefined, issues: b.issues };
}

