/**
 * The generated parts of docs/query-language.md: the field tables, from fields.ts, so
 * the reference cannot drift from the code. Blocks sit between
 * `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`.
 *
 *   npx tsx query-lang/doc.ts        rewrite the blocks in place
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EVENT_FIELDS, TRACK_FIELDS, UPCALL_FIELDS, type FieldDef } from './fields.ts';
import { DROP_REASONS } from './domains.ts';

const esc = (s: string) => s.replaceAll('|', '\\|');

function table(fields: readonly FieldDef[], withColumn: boolean): string {
  const head = withColumn ? '| field | column / SQL | kind | meaning | example |\n|---|---|---|---|---|' : '| field | kind | meaning | example |\n|---|---|---|---|';
  const rows = fields.map((f) => {
    const sql = f.sql.length <= 40 ? `\`${esc(f.sql.replaceAll('"', ''))}\`` : 'computed';
    const values = f.domain?.fixed && f.domain.fixed.length <= 30 ? `; names: ${f.domain.fixed.map((v) => `\`${v}\``).join(', ')}` : '';
    const cells = [`\`${f.name}\``, ...(withColumn ? [sql] : []), f.kind, esc(f.doc) + values, f.example ? `\`${esc(f.example)}\`` : ''];
    return `| ${cells.join(' | ')} |`;
  });
  return [head, ...rows].join('\n');
}

export function generatedBlocks(): Record<string, string> {
  return {
    'event-fields': table(EVENT_FIELDS, true),
    'track-fields': table(TRACK_FIELDS, false),
    'upcall-fields': table(UPCALL_FIELDS, false),
    'drop-reasons': DROP_REASONS.map((r) => `\`${r}\``).join(' '),
  };
}

/** `text` with every generated block replaced by its current content. */
export function updateDoc(text: string): string {
  let out = text;
  for (const [name, body] of Object.entries(generatedBlocks())) {
    const open = `<!-- generated:${name} -->`;
    const close = `<!-- /generated:${name} -->`;
    const re = new RegExp(`${open}[\\s\\S]*?${close}`);
    if (!re.test(out)) throw new Error(`docs: no generated block ${name}`);
    out = out.replace(re, () => `${open}\n${body}\n${close}`);
  }
  return out;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = new URL('../docs/query-language.md', import.meta.url);
  fs.writeFileSync(file, updateDoc(fs.readFileSync(file, 'utf8')));
}
