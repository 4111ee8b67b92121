/**
 * docs/event-model.md is generated from schema.ts (`npm run docs`), so the documented
 * schema cannot drift from the one the readers and writers use; a test checks it.
 */
import { LAZY_SECTIONS } from './lazy.ts';
import { ALIAS_COLUMNS } from './derive.ts';
import { FLAT_COLUMNS, SCHEMA_VERSION, SECTIONS, sqlType, type Field, type FieldType } from './schema.ts';

function typeText(t: FieldType): string {
  if (typeof t === 'string') return t;
  if ('list' in t) return `${typeText(t.list)}[]`;
  return 'STRUCT';
}

function fieldRows(fields: Field[], prefix: string, out: string[]): void {
  for (const f of fields) {
    const name = `${prefix}${f.name}`;
    out.push(`| \`${name}\` | ${typeText(f.type)} | ${f.doc ?? ''} |`);
    if (typeof f.type !== 'string' && 'struct' in f.type) fieldRows(f.type.struct, `${name}.`, out);
    if (typeof f.type !== 'string' && 'list' in f.type && typeof f.type.list !== 'string' && 'struct' in f.type.list) {
      fieldRows(f.type.list.struct, `${name}[].`, out);
    }
  }
}

export function renderEventModelDoc(): string {
  const head = `# The event model (schema version ${SCHEMA_VERSION})

<!-- Generated from analyze/model/schema.ts by \`npm run docs\`; do not edit by hand. -->

Every event, whatever its source — a Retis JSON event file of any version Retis reads,
a Retis sorted-series file, or a capture of ours (Arrow IPC stream, Parquet) — becomes
one row of the \`events\` table in DuckDB, with the columns below.

- **Sections** are nullable STRUCT columns named after Retis's sections (kebab-case, as in
  Retis files: quote them in SQL, e.g. \`"skb-drop".drop_reason\`), with Retis's fields in
  Retis's order. A section absent from an event is NULL; a present section's absent
  optional field is NULL. Writing an event back to JSON omits NULLs, as Retis does.
- **Flat columns** are derived from the sections when a file is loaded (or written, for
  Parquet), for what queries hit most. The packet's L3/L4 fields are parsed from the raw
  bytes in SQL (VLAN tags skipped; IPv6 text per RFC 5952). Those that copy one section
  field (${Object.keys(ALIAS_COLUMNS).map((c) => `\`${c}\``).join(', ')}) are not stored:
  the view computes them when read (a filter on them still reaches the table scan).
  Queries, exports and Parquet files see every flat column alike.
- **Integers stay exact**: u64 values (addresses, timestamps) are UBIGINT, the tracking id
  is a UHUGEINT (\`timestamp << 64 | orig_head\`), JSON is read by DuckDB and written by our
  own serialiser without going through doubles.
- **Arrival order** is kept: \`seq\` (record number in its file) and \`eid\` (over the whole
  load). Retis's tracking \`idx\` depends on it.
- **Retis compat**: files of Retis 1.5 (V0) and 1.6 (V1) get Retis's fixups on load
  (\`skb.packet\` → \`packet\`, \`skb.dev\` → \`dev\`, \`skb.ns\` → \`netns\`, \`ct.tcp_state\` →
  \`ct.proto_state\`, \`startup.machine\`/\`cmdline\` = "unknown"), and are written back in
  their own version's layout by \`--format json\` (so \`sort\` of a 1.6 file is what Retis 1.6
  writes). Files of a newer major version than we know are refused.
- **Lazy sections**: \`events\` is a view over the tables \`events_base\` and \`events_lazy\`. Loading a Retis
  event file of the latest format keeps the big, mostly-absent sections
  (${LAZY_SECTIONS.map((s) => `\`${s}\``).join(', ')}) as their JSON text in hidden columns;
  the view builds their STRUCT only for the rows and sections a query reads (filters on
  flat columns run first). Their required fields are checked at load; a wrongly typed
  value inside them reads as NULL. Everything else is typed at load, as above. Such a file's
  rows do not store what the view can give them at no cost (\`src\`, \`host\`: the file's;
  \`series\`: NULL) or derive when read (\`probe\`, \`proto\`, \`ovs_event\`).

## Files we write

| file | columns | notes |
|---|---|---|
| Parquet (\`events.parquet\`, \`retis-query convert -o x.parquet\`) | every column below but \`eid\` and \`src\` | \`track_id\` as 32 lowercase hex digits (Parquet has no 128-bit integer; zero-padded so text order is numeric order); key-value metadata \`retis_ts.schema_version\`; zstd |
| Arrow IPC stream (\`events.arrow\`) | \`seq\` and the sections the capture's collectors fill (others absent: NULL on load) | flat columns derived on load; schema metadata \`retis_ts.schema_version\`, and \`retis_ts.startup\`: the startup event (JSON, u64 as strings; its row is \`seq\` 1) instead of a \`startup\` column; \`kernel.symbol\` and \`kernel.probe_type\` dictionary-encoded (u16 indices, one dictionary per stream); ZSTD body compression on the buffers of columns null in a whole batch only (Zstandard RLE frames), every other buffer stored uncompressed; every batch complete on its own, so a killed capture loses at most its last batch |

All files we write are created with mode 0600: they hold packet payloads.

## Flat columns

| column | type | meaning |
|---|---|---|
`;
  const flat = FLAT_COLUMNS.map((c) => `| \`${c.name}\` | ${typeText(c.type)} | ${c.doc ?? ''} |`);
  const sec: string[] = ['', '## Sections', '', '| field | type | notes |', '|---|---|---|'];
  fieldRows(SECTIONS, '', sec);
  const sql = ['', '## DuckDB types', '', 'The exact SQL types, as the `events` view returns them:', '', '```sql'];
  for (const s of SECTIONS) sql.push(`"${s.name}" ${sqlType(s.type)}`);
  sql.push('```', '');
  return `${head}${flat.join('\n')}\n${sec.join('\n')}\n${sql.join('\n')}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { writeFileSync } = await import('node:fs');
  const out = new URL('../../docs/event-model.md', import.meta.url);
  writeFileSync(out, renderEventModelDoc());
  process.stderr.write(`wrote ${out.pathname}\n`);
}
