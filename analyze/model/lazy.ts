/**
 * Lazy sections: how Retis JSON events are loaded fast.
 *
 * DuckDB stores every leaf of a STRUCT as its own column. The union schema of the big,
 * mostly-absent sections (`ct`: ~120 leaves with its parent, `ovs`: ~30, `nft`, `startup`,
 * `ovs-detrace`, `tracking`) made loading a Retis file cost ~40 µs per event, most of it
 * spent writing NULL leaves (measured on 200k generated events: typed read_json of every
 * section into a table 8–11 s, the same read with these sections kept as JSON text
 * 2.7–2.9 s, on a loaded 2-vCPU machine).
 *
 * So a Retis JSON file (latest format) is read with these sections typed as JSON: their
 * text goes into hidden VARCHAR columns of `events_lazy` (`_json_ct`, ...), which has no
 * STRUCT column for them (load/table.ts). The `events` view turns the text into the STRUCT
 * only for the rows and sections a query actually reads (a filter on flat columns runs
 * first: DuckDB pushes it below the view's projection). Parquet and Arrow rows, and older
 * Retis formats (whose compat fixups need typed sections), go to `events_base` with every
 * section a STRUCT, as before.
 *
 * Loading still checks what Retis's deserializer requires of these sections (required
 * fields present): load/table.ts withProblem reads just those fields' JSON types at load.
 * Wrongly typed values inside these sections read as NULL (from_json is lenient).
 */
import { SECTIONS, quoteIdent, sqlType, type FieldType } from './schema.ts';

/** Sections kept as JSON text when loading Retis JSON files of the latest format. */
export const LAZY_SECTIONS: readonly string[] = ['tracking', 'ovs', 'ovs-detrace', 'nft', 'ct', 'startup'];

export const isLazy = (section: string): boolean => LAZY_SECTIONS.includes(section);

/** The hidden column holding a lazy section's JSON text. */
export const lazyColumn = (section: string): string => quoteIdent(`_json_${section}`);

/** from_json's structure argument for a model type (BLOB fields do not occur in lazy sections). */
export function jsonStructure(t: FieldType): unknown {
  if (typeof t === 'string') return t;
  if ('list' in t) return [jsonStructure(t.list)];
  return Object.fromEntries(t.struct.map((f) => [f.name, jsonStructure(f.type)]));
}

const sectionType = (name: string): FieldType => SECTIONS.find((s) => s.name === name)!.type;

/** SQL turning a lazy section's JSON text column into the model's STRUCT. */
export function lazySectionExpr(section: string): string {
  const structure = JSON.stringify(jsonStructure(sectionType(section))).replaceAll("'", "''");
  // The cast pins the exact model type (field order and all), whatever from_json infers.
  return `from_json(${lazyColumn(section)}, '${structure}')::${sqlType(sectionType(section))}`;
}
