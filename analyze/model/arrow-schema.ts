/**
 * The event model as an Arrow schema: the same columns, types and nesting as the DuckDB
 * table, so an Arrow IPC stream written by retis-capture loads into the same model.
 * Derived from schema.ts (the single definition); nothing here lists columns by hand.
 */
import {
  Binary,
  Bool,
  Field as ArrowField,
  Int16,
  Int32,
  Int64,
  Int8,
  List,
  Schema,
  Struct,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
  type DataType,
} from 'apache-arrow';
import { SCHEMA_VERSION, SECTIONS, type Field, type FieldType } from './schema.ts';

export function arrowType(t: FieldType): DataType {
  if (typeof t === 'string') {
    switch (t) {
      case 'BOOLEAN':
        return new Bool();
      case 'TINYINT':
        return new Int8();
      case 'UTINYINT':
        return new Uint8();
      case 'SMALLINT':
        return new Int16();
      case 'USMALLINT':
        return new Uint16();
      case 'INTEGER':
        return new Int32();
      case 'UINTEGER':
        return new Uint32();
      case 'BIGINT':
        return new Int64();
      case 'UBIGINT':
        return new Uint64();
      case 'HUGEINT':
      case 'UHUGEINT':
        throw new Error('128-bit integers have no Arrow type: keep them out of Arrow columns');
      case 'BLOB':
        return new Binary();
      case 'VARCHAR':
        return new Utf8();
    }
  }
  if ('list' in t) return new List(new ArrowField('item', arrowType(t.list), true));
  return new Struct(t.struct.map((f) => arrowField(f)));
}

export function arrowField(f: Field): ArrowField {
  return new ArrowField(f.name, arrowType(f.type), true);
}

/**
 * Columns of our Arrow streams: the record number and the sections. Flat columns are
 * derived from the sections when the stream is loaded (model/derive.ts), which keeps the
 * capture's hot path to the sections alone.
 */
export const ARROW_COLUMNS: Field[] = [{ name: 'seq', type: 'UBIGINT' }, ...SECTIONS];

/**
 * Schema metadata key of the startup event, in streams that carry it there rather than as a row
 * (retis-capture since the compact stream: a column of a section present in one row out of
 * millions still costs its buffers in every batch). Its row is `seq` 1, before every record.
 * JSON; 64-bit integers as decimal strings.
 */
export const STARTUP_METADATA = 'retis_ts.startup';

export interface StartupMeta {
  timestamp: bigint;
  retis_version: string;
  cmdline: string;
  clock_monotonic_offset: { sec: bigint; nsec: bigint };
  machine: { kernel_release: string; kernel_version: string; hardware_name: string };
}

export function startupMetaText(s: StartupMeta): string {
  return JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
}

/** The startup event of STARTUP_METADATA as the model row it stands for (throws on bad JSON). */
export function startupMetaRow(text: string): { seq: bigint; common: Record<string, unknown>; startup: Record<string, unknown> } {
  const j = JSON.parse(text) as { timestamp: string; retis_version: string; cmdline: string; clock_monotonic_offset: { sec: string; nsec: string }; machine: StartupMeta['machine'] };
  return {
    seq: 1n,
    // As the startup row of a stream that has the column: timestamp only, task and CPU null.
    common: { timestamp: BigInt(j.timestamp), smp_id: null, task: null },
    startup: {
      retis_version: j.retis_version,
      cmdline: j.cmdline,
      clock_monotonic_offset: { sec: BigInt(j.clock_monotonic_offset.sec), nsec: BigInt(j.clock_monotonic_offset.nsec) },
      machine: { kernel_release: j.machine.kernel_release, kernel_version: j.machine.kernel_version, hardware_name: j.machine.hardware_name },
      split_file: null,
    },
  };
}

export function eventArrowSchema(extra: Record<string, string> = {}): Schema {
  const meta = new Map<string, string>([['retis_ts.schema_version', String(SCHEMA_VERSION)], ...Object.entries(extra)]);
  return new Schema(ARROW_COLUMNS.map(arrowField), meta);
}
