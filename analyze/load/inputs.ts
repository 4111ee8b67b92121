/**
 * Resolve what users type as INPUT into a list of files to load, in load order:
 * - a Retis event file (`retis.data`, any JSON-lines file), or `FILE..` for a file and
 *   the split files after it (`retis.data.2..` → retis.data.2, .3, ...);
 * - a capture directory of ours (`events.parquet`, else `events.arrow`, + capture.json);
 * - `.parquet` / `.arrow` files of our schema;
 * - a directory holding many of these (several hosts), searched recursively;
 * - a glob (`hosts/*\/retis.data`, `caps/**\/*.parquet`).
 * Default: `./retis.capture`, else `./retis.data`, else `./retis.data.0..`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from './errors.ts';

export type InputFormat = 'retis-json' | 'parquet' | 'arrow';

export interface InputFile {
  path: string;
  format: InputFormat;
  /** Host the data came from, when known (capture.json's host, else the capture directory's name). */
  host: string | null;
}

function formatOf(p: string): InputFormat {
  if (p.endsWith('.parquet')) return 'parquet';
  if (p.endsWith('.arrow') || p.endsWith('.arrows')) return 'arrow';
  return 'retis-json';
}

function captureHost(dir: string): string | null {
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as { host?: { name?: string } | string };
    if (typeof meta.host === 'string') return meta.host;
    if (meta.host && typeof meta.host.name === 'string') return meta.host.name;
  } catch {
    // No or unreadable metadata: fall back to the directory name.
  }
  return path.basename(path.resolve(dir));
}

/** Our capture directory: the Parquet file when the capture was stopped cleanly, else the Arrow stream. */
function captureDirFile(dir: string): InputFile | null {
  const host = () => captureHost(dir);
  for (const name of ['events.parquet', 'events.arrow']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return { path: p, format: formatOf(p), host: host() };
  }
  return null;
}

const DATA_FILE = /(^retis\.data(\.\d+)?$)|\.(json|jsonl|ndjson|data|parquet|arrow|arrows)$/;

function walk(dir: string, out: InputFile[]): void {
  const own = captureDirFile(dir);
  if (own) {
    out.push(own);
    return;
  }
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => naturalCompare(a.name, b.name));
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && DATA_FILE.test(e.name) && e.name !== 'capture.json' && !e.name.endsWith('.truth.json')) {
      out.push({ path: p, format: formatOf(p), host: path.basename(path.dirname(path.resolve(p))) });
    }
  }
}

/** Compare so that retis.data.2 sorts before retis.data.10. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function splitFiles(spec: string): string[] {
  const first = spec.slice(0, -2);
  const m = /^(.*\.)(\d+)$/.exec(first);
  if (!m) throw new InputError(spec, null, 'FILE.. needs a split file name ending in .N (e.g. retis.data.2..)');
  const files: string[] = [];
  for (let i = Number(m[2]); fs.existsSync(`${m[1]}${i}`); i++) files.push(`${m[1]}${i}`);
  if (files.length === 0) throw new InputError(first, null, 'no such file');
  return files;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function expandGlob(glob: string): string[] {
  const abs = path.isAbsolute(glob);
  const parts = glob.split('/');
  const fixed: string[] = [];
  for (const p of parts) {
    if (/[*?]/.test(p)) break;
    fixed.push(p);
  }
  const root = fixed.join('/') || (abs ? '/' : '.');
  const re = globToRegExp(path.normalize(glob));
  const found: string[] = [];
  const visit = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (re.test(path.normalize(p))) found.push(p);
      else if (e.isDirectory()) visit(p);
    }
  };
  visit(root);
  return found.sort(naturalCompare);
}

function resolveOne(spec: string, out: InputFile[]): void {
  if (spec.endsWith('..') && !fs.existsSync(spec)) {
    for (const p of splitFiles(spec)) out.push({ path: p, format: 'retis-json', host: path.basename(path.dirname(path.resolve(p))) });
    return;
  }
  if (/[*?]/.test(spec) && !fs.existsSync(spec)) {
    const matches = expandGlob(spec);
    if (matches.length === 0) throw new InputError(spec, null, 'no file matches this pattern');
    for (const m of matches) resolveOne(m, out);
    return;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(spec);
  } catch {
    throw new InputError(spec, null, 'no such file or directory');
  }
  if (st.isDirectory()) {
    const before = out.length;
    walk(spec, out);
    if (out.length === before) throw new InputError(spec, null, 'no capture or Retis event file in this directory');
    return;
  }
  out.push({ path: spec, format: formatOf(spec), host: path.basename(path.dirname(path.resolve(spec))) });
}

export function resolveInputs(specs: string[]): InputFile[] {
  if (specs.length === 0) {
    if (fs.existsSync('retis.capture')) specs = ['retis.capture'];
    else if (fs.existsSync('retis.data')) specs = ['retis.data'];
    else if (fs.existsSync('retis.data.0')) specs = ['retis.data.0..'];
    else throw new InputError('retis.capture', null, 'no input given and neither ./retis.capture nor ./retis.data exists');
  }
  const out: InputFile[] = [];
  for (const s of specs) resolveOne(s, out);
  return out;
}
