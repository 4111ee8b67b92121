/**
 * retis-query: the offline half. Subcommands print, sort, pcap, stats; anything else is a
 * query in the retis-query language (query-lang/).
 *
 * Exit codes: 0 ok, 1 user error (bad file, bad query; one line naming the cause),
 * 2 usage error.
 */
import fs from 'node:fs';
import { Db, DbError } from './db.ts';
import { InputError, loadInputs } from './load/index.ts';
import { OUTPUT_FORMATS, Out, type OutputFormat } from './output.ts';
import { convertCommand, printCommand, sortCommand, statsCommand, pcapCommand, type CommandContext } from './commands.ts';

const USAGE = `usage:
  retis-query [QUERY] [INPUT...] [--format text|table|json|csv] [--explain] [--sql "SQL"]
  retis-query print [INPUT...]            every event, Retis text format
  retis-query sort  [INPUT...] [-o FILE]  events grouped into per-packet series
  retis-query pcap  [--probe [TYPE:]TARGET] -o FILE [INPUT...]
  retis-query stats [INPUT...]            events per probe, collector, CPU; losses; time span
  retis-query convert -o FILE.parquet|FILE.arrow [INPUT...]
                                          write events as a file of our schema

INPUT: a capture directory, .arrow, .parquet, a Retis event file (retis.data, sorted
files too, FILE.. for split files), or a directory/glob of many (default ./retis.capture,
else ./retis.data).

options:
  --format F        text (default) | table | json (JSON Lines) | csv;
                    text may also be given as multi-line (default) or single-line
  -e, --print-ll    show link-layer information in packet lines
  --utc             print timestamps as UTC dates
  -o, --out FILE    output file (pcap, sort)
  -p, --probe P     pcap: only events of this probe (e.g. tp:net:netif_receive_skb)
  --explain         print the SQL a query compiles to
  --sql SQL         run SQL against the events table
  --db FILE         use a DuckDB database file instead of memory (loads larger than RAM)
  --skip-bad-lines  load what is readable from a damaged Retis file, skipping bad lines
  -h, --help        this help
`;

export class UsageError extends Error {}

export interface CliArgs {
  command: 'print' | 'sort' | 'pcap' | 'stats' | 'convert' | 'query';
  query?: string;
  inputs: string[];
  format: OutputFormat;
  multiline: boolean;
  printLl: boolean;
  utc: boolean;
  out?: string;
  probe?: string;
  explain: boolean;
  sql?: string;
  db?: string;
  skipBadLines: boolean;
}

const COMMANDS = new Set(['print', 'sort', 'pcap', 'stats', 'convert']);

export function parseArgs(argv: string[]): CliArgs | 'help' {
  const args: CliArgs = { command: 'query', inputs: [], format: 'text', multiline: true, printLl: false, utc: false, explain: false, skipBadLines: false };
  const positional: string[] = [];
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const take = (): string => {
      if (eq > 0) return a.slice(eq + 1);
      const v = value(i, flag);
      i++;
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '--format':
      case '-f': {
        const f = take();
        if (f === 'multi-line' || f === 'single-line') {
          args.format = 'text';
          args.multiline = f === 'multi-line';
        } else if ((OUTPUT_FORMATS as string[]).includes(f)) args.format = f as OutputFormat;
        else throw new UsageError(`--format: unknown format "${f}" (text, table, json, csv)`);
        break;
      }
      case '-e':
      case '--print-ll':
        args.printLl = true;
        break;
      case '--utc':
        args.utc = true;
        break;
      case '-o':
      case '--out':
        args.out = take();
        break;
      case '-p':
      case '--probe':
        args.probe = take();
        break;
      case '--explain':
        args.explain = true;
        break;
      case '--sql':
        args.sql = take();
        break;
      case '--db':
        args.db = take();
        break;
      case '--skip-bad-lines':
        args.skipBadLines = true;
        break;
      default:
        if (a.startsWith('-') && a !== '-' && a.length > 1) throw new UsageError(`unknown option ${a}`);
        positional.push(a);
    }
  }
  if (positional.length > 0 && COMMANDS.has(positional[0]!)) {
    args.command = positional.shift() as CliArgs['command'];
  } else if (!args.sql && positional.length > 0 && !looksLikeInput(positional[0]!)) {
    args.query = positional.shift();
  }
  args.inputs = positional;
  if (args.command === 'pcap' && !args.out) throw new UsageError('pcap needs -o FILE');
  if (args.command === 'convert' && !/\.(parquet|arrow)$/.test(args.out ?? '')) throw new UsageError('convert needs -o FILE.parquet or -o FILE.arrow');
  return args;
}

/** A first positional that names an existing path (or a glob / split-file spec) is an input, not a query. */
function looksLikeInput(s: string): boolean {
  if (fs.existsSync(s)) return true;
  if (/\s/.test(s)) return false;
  return s.endsWith('..') || /[*?]/.test(s) || /\.(json|data|parquet|arrow)$/.test(s);
}

function userMessage(e: unknown): string | null {
  if (e instanceof InputError) return e.message;
  if (e instanceof DbError) return e.message.split('\n')[0] ?? e.message;
  if (e instanceof UsageError) return e.message;
  if (e && typeof e === 'object' && 'userMessage' in e && typeof (e as { userMessage: unknown }).userMessage === 'string') {
    return (e as { userMessage: string }).userMessage;
  }
  return null;
}

export async function main(argv: string[]): Promise<number> {
  // `retis-query print big.json | head`: the reader went away, which is not an error. Without
  // this, the failed write of the rest surfaced as an uncaught EPIPE with a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  let args: CliArgs | 'help';
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`retis-query: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.command === 'query' && (args.query !== undefined || args.sql !== undefined)) {
    let queryMain: typeof import('../query-lang/cli-entry.ts').queryMain | undefined;
    try {
      ({ queryMain } = await import('../query-lang/cli-entry.ts'));
    } catch {
      queryMain = undefined;
    }
    if (!queryMain) {
      process.stderr.write('retis-query: the query language is not available in this build\n');
      return 1;
    }
    return queryMain({
      query: args.query,
      sql: args.sql,
      inputs: args.inputs,
      format: args.format,
      explain: args.explain,
      multiline: args.multiline,
      utc: args.utc,
      printLl: args.printLl,
      ...(args.db ? { db: args.db } : {}),
    });
  }
  if (args.command === 'query') args.command = 'print';
  const out = new Out(process.stdout);
  let db: Db | undefined;
  try {
    db = await Db.open(args.db ? { path: args.db } : {});
    const files = await loadInputs(db, args.inputs, { progress: true, skipBadLines: args.skipBadLines });
    const ctx: CommandContext = { db, args, files, out };
    let code = 0;
    switch (args.command) {
      case 'print':
        code = await printCommand(ctx);
        break;
      case 'sort':
        code = await sortCommand(ctx);
        break;
      case 'pcap':
        code = await pcapCommand(ctx);
        break;
      case 'stats':
        code = await statsCommand(ctx);
        break;
      case 'convert':
        code = await convertCommand(ctx);
        break;
    }
    await out.flush();
    return code;
  } catch (e) {
    const msg = userMessage(e);
    if (msg === null) throw e;
    await out.flush().catch(() => undefined);
    process.stderr.write(`retis-query: ${msg}\n`);
    return 1;
  } finally {
    db?.close();
  }
}
