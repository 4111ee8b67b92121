/**
 * Tokens of the query language.
 *
 * Order matters: chevrotain takes the first pattern that matches, so the specific
 * literal shapes (dates, MACs, addresses, durations, probes) come before plain numbers
 * and names. Keywords are case-insensitive. Stage words (`count`, `sort`, `by`, ...) are
 * *soft*: they also match `Name`, so a column called `count` can still be referred to.
 */
import { createToken, Lexer, type IToken, type TokenType } from 'chevrotain';
import type { QueryIssue } from './errors.ts';

// ---- categories
/** Anything usable as a field name: identifiers and soft keywords. */
export const Name = createToken({ name: 'Name', pattern: Lexer.NA, label: 'a name' });
/** Literal values. */
export const Literal = createToken({ name: 'Literal', pattern: Lexer.NA, label: 'a value' });
export const CompOp = createToken({ name: 'CompOp', pattern: Lexer.NA, label: 'a comparison (= != < <= > >= ~)' });

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /\s+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: 'Comment', pattern: /#\s[^\n]*|--[^\n]*/, group: Lexer.SKIPPED });

// ---- literals (most specific first)
export const StringLit = createToken({
  name: 'StringLit',
  pattern: /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/,
  categories: [Literal],
  label: 'a string',
});
/** An opening quote that never closes: reported as its own issue. */
export const Unterminated = createToken({ name: 'Unterminated', pattern: /"(?:[^"\\\n]|\\.)*|'(?:[^'\\\n]|\\.)*/, label: 'an unterminated string' });
export const DateTimeLit = createToken({
  name: 'DateTimeLit',
  pattern: /\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?(?![\w.:])/,
  categories: [Literal],
  label: 'a date/time',
});
export const MacLit = createToken({
  name: 'MacLit',
  pattern: /[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){5}(?![\w:])/,
  categories: [Literal],
  label: 'a MAC address',
});
/** IPv6 address or prefix: at least two colons; checked properly when converted. */
export const Ip6Lit = createToken({
  name: 'Ip6Lit',
  pattern: /(?:[0-9a-fA-F]{0,4}:){2,7}(?:[0-9a-fA-F]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?:\/\d{1,3})?(?![\w:.])/,
  categories: [Literal],
  label: 'an IPv6 address',
});
export const Ip4Lit = createToken({
  name: 'Ip4Lit',
  pattern: /\d{1,3}(?:\.\d{1,3}){3}(?:\/\d{1,2})?(?![\w.])/,
  categories: [Literal],
  label: 'an IPv4 address',
});
export const DurationLit = createToken({
  name: 'DurationLit',
  pattern: /\d+(?:\.\d+)?(?:ns|us|µs|ms|min|s|m|h)(?![\w.])/,
  categories: [Literal],
  label: 'a duration',
});
/** A tracking id as Retis prints it: `#1baa83c42ba1ffff8e95c3b67c00`. */
export const TrackLit = createToken({ name: 'TrackLit', pattern: /#[0-9a-fA-F]+(?!\w)/, categories: [Literal], label: 'a tracking id' });
export const NumberLit = createToken({
  name: 'NumberLit',
  pattern: /-?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?)(?![\w.])/,
  categories: [Literal],
  label: 'a number',
});
/** A probe as users type it for `-p`: `tp:net:netif_receive_skb`, `kprobe:ip_rcv`, `usdt:...`. */
export const ProbeLit = createToken({
  name: 'ProbeLit',
  pattern: /(?:tp|raw_tp|raw_tracepoint|kprobe|kretprobe|k|kr|fentry|fexit|usdt|u):[\w.:-]+/,
  categories: [Literal],
  label: 'a probe',
});

// ---- punctuation and operators
export const Pipe = createToken({ name: 'Pipe', pattern: /\|(?!\|)/, label: "'|'" });
export const LParen = createToken({ name: 'LParen', pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: 'RParen', pattern: /\)/, label: "')'" });
export const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
export const Dot = createToken({ name: 'Dot', pattern: /\./, label: "'.'" });
export const Ne = createToken({ name: 'Ne', pattern: /!=|<>/, categories: [CompOp], label: "'!='" });
export const NotGlob = createToken({ name: 'NotGlob', pattern: /!~/, categories: [CompOp], label: "'!~'" });
export const Le = createToken({ name: 'Le', pattern: /<=/, categories: [CompOp], label: "'<='" });
export const Ge = createToken({ name: 'Ge', pattern: />=/, categories: [CompOp], label: "'>='" });
export const Lt = createToken({ name: 'Lt', pattern: /</, categories: [CompOp], label: "'<'" });
export const Gt = createToken({ name: 'Gt', pattern: />/, categories: [CompOp], label: "'>'" });
export const Eq = createToken({ name: 'Eq', pattern: /==?/, categories: [CompOp], label: "'='" });
export const Glob = createToken({ name: 'Glob', pattern: /~/, categories: [CompOp], label: "'~'" });
export const AndSym = createToken({ name: 'AndSym', pattern: /&&/, label: "'and'" });
export const OrSym = createToken({ name: 'OrSym', pattern: /\|\|/, label: "'or'" });
export const NotSym = createToken({ name: 'NotSym', pattern: /!/, label: "'not'" });

// ---- names
export const Identifier = createToken({
  name: 'Identifier',
  pattern: /[A-Za-z_][\w]*(?:-[A-Za-z_][\w]*)*/,
  categories: [Name],
  label: 'a name',
});

function keyword(word: string, categories: TokenType[] = []): TokenType {
  return createToken({
    name: word[0]!.toUpperCase() + word.slice(1),
    pattern: new RegExp(`${word}(?![\\w-])`, 'i'),
    longer_alt: Identifier,
    categories,
    label: `'${word}'`,
  });
}

// Hard keywords: never field names.
export const Where = keyword('where');
export const And = keyword('and');
export const Or = keyword('or');
export const Not = keyword('not');
export const In = keyword('in');
export const Between = keyword('between');
export const True = keyword('true', [Literal]);
export const False = keyword('false', [Literal]);
// Soft keywords: stage words, usable as names.
export const Count = keyword('count', [Name]);
export const Top = keyword('top', [Name]);
export const Sort = keyword('sort', [Name]);
export const Fields = keyword('fields', [Name]);
export const Order = keyword('order', [Name]);
export const By = keyword('by', [Name]);
export const Asc = keyword('asc', [Name]);
export const Desc = keyword('desc', [Name]);
export const Limit = keyword('limit', [Name]);
export const Stats = keyword('stats', [Name]);
export const Histogram = keyword('histogram', [Name]);
export const Every = keyword('every', [Name]);
export const Pcap = keyword('pcap', [Name]);
export const As = keyword('as', [Name]);

export const KEYWORDS: TokenType[] = [
  Where, And, Or, Not, In, Between, True, False,
  Count, Top, Sort, Fields, Order, By, Asc, Desc, Limit, Stats, Histogram, Every, Pcap, As,
];

export const ALL_TOKENS: TokenType[] = [
  WhiteSpace,
  Comment,
  Name,
  Literal,
  CompOp,
  StringLit,
  Unterminated,
  DateTimeLit,
  MacLit,
  Ip6Lit,
  Ip4Lit,
  DurationLit,
  TrackLit,
  NumberLit,
  ProbeLit,
  OrSym,
  Pipe,
  LParen,
  RParen,
  Comma,
  Dot,
  Ne,
  NotGlob,
  Le,
  Ge,
  Lt,
  Gt,
  Eq,
  Glob,
  AndSym,
  NotSym,
  ...KEYWORDS,
  Identifier,
];

const lexer = new Lexer(ALL_TOKENS, { positionTracking: 'full', ensureOptimizations: false });

const CHAR_HINTS: Record<string, string> = {
  '/': 'quote file names and paths: pcap "/tmp/drops.pcapng"',
  '*': 'wildcards go in a quoted glob: dev ~ "veth*"',
  '?': 'wildcards go in a quoted glob: dev ~ "eth?"',
  ';': 'one query at a time; chain stages with |',
  '&': "write 'and' (or &&)",
  '[': "lists are written (a, b): proto in (tcp, udp)",
  '{': "lists are written (a, b): proto in (tcp, udp)",
  '$': 'values are written directly: reason = NO_SOCKET',
  '`': 'quote strings with " or \'',
  '#': 'a tracking id is #<hex digits>; a comment is "# text" or "-- text"',
  ':': 'quote probe names and other text with colons: probe = "tp:net:netif_receive_skb"',
};

export interface LexResult {
  tokens: IToken[];
  issues: QueryIssue[];
}

/** Tokens of `text`, and an issue for each character that starts no token. */
export function lex(text: string): LexResult {
  const r = lexer.tokenize(text);
  const issues: QueryIssue[] = r.errors.map((e) => {
    const char = text.charAt(e.offset);
    const hint = CHAR_HINTS[char];
    return {
      code: 'unexpected_character' as const,
      char,
      message: `unexpected character '${char}'`,
      span: { start: e.offset, end: e.offset + 1 },
      ...(hint ? { hint } : {}),
    };
  });
  const tokens: IToken[] = [];
  for (const t of r.tokens) {
    if (t.tokenType === Unterminated) {
      issues.push({
        code: 'unterminated_string',
        message: 'unterminated string',
        span: { start: t.startOffset, end: t.endOffset! + 1 },
        hint: `close it with ${t.image[0]}`,
      });
      continue;
    }
    tokens.push(t);
  }
  issues.sort((a, b) => (a.span?.start ?? 0) - (b.span?.start ?? 0));
  return { tokens, issues };
}
