/**
 * The grammar, as a chevrotain CST parser. docs/query-language.md carries the same
 * grammar in EBNF; keep the two in step.
 *
 *   query      = source [ "where" or ] { "|" stage } ;
 *   stage      = where | count | top | sort | fields | order | limit | stats | histogram | pcap ;
 *   or         = and { ("or" | "||") and } ;
 *   and        = not { ("and" | "&&") not } ;
 *   not        = ("not" | "!") not | atom ;
 *   atom       = "(" or ")" | primitive | predicate ;
 *   primitive  = name ( literal | name [ operand ] ) ;          (host/net/port, src/dst)
 *   predicate  = operand [ compop operand | ["not"] "in" list | ["not"] "between" operand "and" operand ] ;
 *   operand    = literal | name "(" or ")" | path ;
 *
 * The parser is built once per process; `parse` reuses it.
 */
import { CstParser, EOF, tokenMatcher, type CstNode, type IToken, type TokenType, type IParserErrorMessageProvider } from 'chevrotain';
import * as T from './lexer.ts';
import type { QueryIssue, Span } from './errors.ts';
import { orList } from './errors.ts';
import { suggest } from './suggest.ts';

function label(t: TokenType): string {
  if (t === EOF) return 'end of query';
  return t.LABEL ?? t.name;
}

function shown(tok: IToken): string {
  return tok.tokenType === EOF ? 'end of query' : `'${tok.image}'`;
}

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual }) => `expected ${label(expected)}, found ${shown(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `unexpected ${shown(firstRedundant)}`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual }) => {
    const firsts = [...new Set(expectedPathsPerAlt.flat().map((p) => (p[0] ? label(p[0]) : '')))].filter(Boolean);
    return `expected ${orList(firsts, false)}, found ${shown(actual[0]!)}`;
  },
  buildEarlyExitMessage: ({ expectedIterationPaths, actual }) => {
    const firsts = [...new Set(expectedIterationPaths.map((p) => (p[0] ? label(p[0]) : '')))].filter(Boolean);
    return `expected ${orList(firsts, false)}, found ${shown(actual[0]!)}`;
  },
};

class QueryParser extends CstParser {
  constructor() {
    super(T.ALL_TOKENS, { recoveryEnabled: false, maxLookahead: 3, errorMessageProvider: messages, nodeLocationTracking: 'onlyOffset' });
    this.performSelfAnalysis();
  }

  query = this.RULE('query', () => {
    this.CONSUME(T.Name, { LABEL: 'source' });
    this.OPTION(() => {
      this.CONSUME(T.Where);
      this.SUBRULE(this.orExpr, { LABEL: 'where' });
    });
    this.MANY(() => {
      this.CONSUME(T.Pipe);
      this.SUBRULE(this.stage);
    });
  });

  stage = this.RULE('stage', () => {
    this.OR([
      { ALT: alt(() => this.SUBRULE(this.whereStage)) },
      { ALT: alt(() => this.SUBRULE(this.countStage)) },
      { ALT: alt(() => this.SUBRULE(this.topStage)) },
      { ALT: alt(() => this.SUBRULE(this.sortStage)) },
      { ALT: alt(() => this.SUBRULE(this.fieldsStage)) },
      { ALT: alt(() => this.SUBRULE(this.orderStage)) },
      { ALT: alt(() => this.SUBRULE(this.limitStage)) },
      { ALT: alt(() => this.SUBRULE(this.statsStage)) },
      { ALT: alt(() => this.SUBRULE(this.histogramStage)) },
      { ALT: alt(() => this.SUBRULE(this.pcapStage)) },
    ]);
  });

  whereStage = this.RULE('whereStage', () => {
    this.CONSUME(T.Where);
    this.SUBRULE(this.orExpr);
  });

  countStage = this.RULE('countStage', () => {
    this.CONSUME(T.Count);
    this.OPTION(() => {
      this.CONSUME(T.By);
      this.SUBRULE(this.fieldList);
    });
  });

  topStage = this.RULE('topStage', () => {
    this.CONSUME(T.Top);
    this.CONSUME(T.NumberLit);
    this.OPTION(() => {
      this.CONSUME(T.By);
      this.SUBRULE(this.fieldList);
    });
  });

  sortStage = this.RULE('sortStage', () => {
    this.CONSUME(T.Sort);
  });

  fieldsStage = this.RULE('fieldsStage', () => {
    this.CONSUME(T.Fields);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.fieldItem) });
  });

  fieldItem = this.RULE('fieldItem', () => {
    this.SUBRULE(this.operand);
    this.OPTION(() => {
      this.CONSUME(T.As);
      this.CONSUME(T.Name, { LABEL: 'alias' });
    });
  });

  orderStage = this.RULE('orderStage', () => {
    this.CONSUME(T.Order);
    this.CONSUME(T.By);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.orderItem) });
  });

  orderItem = this.RULE('orderItem', () => {
    this.SUBRULE(this.operand);
    this.OPTION(() => this.OR([{ ALT: alt(() => this.CONSUME(T.Asc)) }, { ALT: alt(() => this.CONSUME(T.Desc)) }]));
  });

  limitStage = this.RULE('limitStage', () => {
    this.CONSUME(T.Limit);
    this.CONSUME(T.NumberLit);
  });

  statsStage = this.RULE('statsStage', () => {
    this.CONSUME(T.Stats);
    this.SUBRULE(this.operand);
    this.OPTION(() => {
      this.CONSUME(T.By);
      this.SUBRULE(this.fieldList);
    });
  });

  histogramStage = this.RULE('histogramStage', () => {
    this.CONSUME(T.Histogram);
    this.SUBRULE(this.operand);
    this.OPTION(() => {
      this.CONSUME(T.Every);
      this.CONSUME(T.Literal);
    });
  });

  pcapStage = this.RULE('pcapStage', () => {
    this.CONSUME(T.Pcap);
    this.OR([{ ALT: alt(() => this.CONSUME(T.StringLit)) }, { ALT: alt(() => this.SUBRULE(this.path)) }]);
  });

  fieldList = this.RULE('fieldList', () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.operand) });
  });

  path = this.RULE('path', () => {
    this.CONSUME(T.Name);
    this.MANY(() => {
      this.CONSUME(T.Dot);
      this.CONSUME2(T.Name);
    });
  });

  orExpr = this.RULE('orExpr', () => {
    this.SUBRULE(this.andExpr);
    this.MANY(() => {
      this.OR([{ ALT: alt(() => this.CONSUME(T.Or)) }, { ALT: alt(() => this.CONSUME(T.OrSym)) }]);
      this.SUBRULE2(this.andExpr);
    });
  });

  andExpr = this.RULE('andExpr', () => {
    this.SUBRULE(this.notExpr);
    this.MANY(() => {
      this.OR([{ ALT: alt(() => this.CONSUME(T.And)) }, { ALT: alt(() => this.CONSUME(T.AndSym)) }]);
      this.SUBRULE2(this.notExpr);
    });
  });

  notExpr = this.RULE('notExpr', () => {
    this.OR([
      {
        ALT: alt(() => {
          this.OR2([{ ALT: alt(() => this.CONSUME(T.Not)) }, { ALT: alt(() => this.CONSUME(T.NotSym)) }]);
          this.SUBRULE(this.notExpr);
        }),
      },
      { ALT: alt(() => this.SUBRULE(this.atom)) },
    ]);
  });

  atom = this.RULE('atom', () => {
    this.OR([
      {
        ALT: alt(() => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.orExpr);
          this.CONSUME(T.RParen);
        }),
      },
      { ALT: alt(() => this.SUBRULE(this.primitive)) },
      { ALT: alt(() => this.SUBRULE(this.predicate)) },
    ]);
  });

  /** `port 53`, `src host 10.0.0.1`, `net 10.0.0.0/8`; anything else juxtaposed is reported by the visitor. */
  primitive = this.RULE('primitive', () => {
    this.CONSUME(T.Name, { LABEL: 'word' });
    this.OR([
      { ALT: alt(() => this.CONSUME(T.Literal)) },
      {
        ALT: alt(() => {
          this.CONSUME2(T.Name, { LABEL: 'word' });
          this.OPTION(() => this.SUBRULE(this.operand));
        }),
      },
    ]);
  });

  predicate = this.RULE('predicate', () => {
    this.SUBRULE(this.operand, { LABEL: 'left' });
    this.OPTION(() => {
      this.OR([
        {
          ALT: alt(() => {
            this.CONSUME(T.CompOp);
            this.SUBRULE2(this.operand, { LABEL: 'right' });
          }),
        },
        {
          ALT: alt(() => {
            this.OPTION2(() => this.CONSUME(T.Not));
            this.CONSUME(T.In);
            this.SUBRULE(this.inList);
          }),
        },
        {
          ALT: alt(() => {
            this.OPTION3(() => this.CONSUME2(T.Not));
            this.CONSUME(T.Between);
            this.SUBRULE3(this.operand, { LABEL: 'low' });
            this.CONSUME(T.And);
            this.SUBRULE4(this.operand, { LABEL: 'high' });
          }),
        },
      ]);
    });
  });

  inList = this.RULE('inList', () => {
    this.OR([
      {
        ALT: alt(() => {
          this.CONSUME(T.LParen);
          this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.operand) });
          this.CONSUME(T.RParen);
        }),
      },
      { ALT: alt(() => this.SUBRULE2(this.operand)) },
    ]);
  });

  operand = this.RULE('operand', () => {
    this.OR([
      { ALT: alt(() => this.CONSUME(T.Literal)) },
      { ALT: alt(() => this.SUBRULE(this.call)) },
      { ALT: alt(() => this.SUBRULE(this.path)) },
    ]);
  });

  call = this.RULE('call', () => {
    this.CONSUME(T.Name, { LABEL: 'fn' });
    this.CONSUME(T.LParen);
    this.SUBRULE(this.orExpr);
    this.CONSUME(T.RParen);
  });
}

/**
 * Identity. Alternatives are written `{ ALT: alt(() => ...) }` so that the closure is an
 * argument, not a property: a property's arrow function gets a name assigned at run time
 * by the TypeScript loader (esbuild's keepNames), once per call of the rule — a third of
 * the parse time.
 */
function alt<T>(f: () => T): () => T {
  return f;
}

let instance: QueryParser | undefined;
function parser(): QueryParser {
  instance ??= new QueryParser();
  return instance;
}

export interface ParseResult {
  cst: CstNode | undefined;
  issues: QueryIssue[];
}

const KEYWORD_WORDS = ['and', 'or', 'not', 'in', 'between', 'where', 'by', 'count', 'top', 'sort', 'fields', 'order', 'limit', 'stats', 'histogram', 'pcap', 'every', 'as', 'asc', 'desc'];

/** A did-you-mean and a hint for tokens people carry over from SQL, tcpdump or Retis filters. */
function adviceFor(found: IToken, prev: IToken | undefined, message: string): { suffix: string; hint?: string } {
  const img = found.image.toLowerCase();
  const prevImg = prev?.image.toLowerCase();
  if (found.tokenType === EOF) {
    if (/expected a value/.test(message)) return { suffix: '', hint: 'a comparison needs a value on its right: reason = NO_SOCKET' };
    return { suffix: '' };
  }
  if (img === 'select' || img === 'from' || img === 'group') return { suffix: '', hint: 'this is not SQL: write `drops | count by reason`, or run SQL with --sql' };
  if (prevImg === 'sort' && img === 'by') return { suffix: '', hint: '`| sort` prints packet series; to order rows write `| order by FIELD`' };
  if (prevImg === '|' && (img === 'filter' || img === 'head' || img === 'take' || img === 'select' || img === 'project' || img === 'summarize')) {
    const alt: Record<string, string> = { filter: 'where', head: 'limit N', take: 'limit N', select: 'fields', project: 'fields', summarize: 'count by / stats' };
    return { suffix: '', hint: `write \`| ${alt[img]}\`` };
  }
  if (tokenMatcher(found, T.Name)) {
    const near = suggest(img, KEYWORD_WORDS, 1);
    if (near.length > 0 && near[0] !== img) return { suffix: `; did you mean '${near[0]}'?` };
    if (/unexpected/.test(message)) return { suffix: '', hint: 'join conditions with and/or; separate stages with |: drops where dev = "eth0" | count by reason' };
  }
  if (img === '=' && prevImg === '=') return { suffix: '', hint: 'equality is a single =' };
  return { suffix: '' };
}

/** Parse tokens into a CST; at most one issue (the first error). */
export function parseTokens(tokens: IToken[], source: string): ParseResult {
  const p = parser();
  p.input = tokens;
  const cst = p.query();
  if (p.errors.length === 0) return { cst, issues: [] };
  const e = p.errors[0]!;
  const tok = e.token;
  const span: Span =
    tok.tokenType === EOF || Number.isNaN(tok.startOffset)
      ? { start: source.trimEnd().length, end: source.trimEnd().length + 1 }
      : { start: tok.startOffset, end: (tok.endOffset ?? tok.startOffset) + 1 };
  const idx = tokens.indexOf(tok);
  const prev = idx > 0 ? tokens[idx - 1] : tok.tokenType === EOF ? tokens[tokens.length - 1] : undefined;
  const { suffix, hint } = adviceFor(tok, prev, e.message);
  const expected = [...e.message.matchAll(/expected (.*), found/g)].flatMap((m) => m[1]!.split(/, | or /));
  return {
    cst: undefined,
    issues: [
      {
        code: 'syntax_error',
        message: e.message + suffix,
        span,
        expected,
        found: tok.tokenType === EOF ? '' : tok.image,
        ...(hint ? { hint } : {}),
      },
    ],
  };
}
