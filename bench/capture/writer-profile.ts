// Ad-hoc: split the writer's CPU per event into decode / Arrow assembly / IPC write.
import fs from 'node:fs';
import { ArrowStreamFile } from '../../capture/arrow-stream.ts';
import { EventEncoder } from '../../capture/decode.ts';
import { writerFixture } from './fixture.ts';

const { probes, batch, records, reasons, schema } = writerFixture();
EventEncoder.warmUp(schema);
const out = process.argv[2] ?? '/tmp/capperf/w.arrow';
const file = new ArrowStreamFile(out, schema, true);
let tAsm = 0, tWrite = 0;
const enc = new EventEncoder({ schema, probes, dropReasons: reasons, symbols: undefined, batchRows: 16384, batchPacketBytes: 8 << 20, snaplen: 255, maxEvents: Number.MAX_SAFE_INTEGER, onBatch: (c) => {
  const a = performance.now(); const rb = c.recordBatch(); const b = performance.now(); file.write(rb); const d = performance.now(); tAsm += b - a; tWrite += d - b;
} });
const N = Number(process.argv[3] ?? 2_000_000);
const t0 = performance.now();
while (enc.events < N) enc.decode(batch);
enc.flush();
file.close();
const total = performance.now() - t0;
console.log(JSON.stringify({ events: enc.events, batchBytes: batch.byteLength, recs: records, totalMs: total.toFixed(0), nsPerEvent: (total * 1e6 / enc.events).toFixed(0), decodeNs: ((total - tAsm - tWrite) * 1e6 / enc.events).toFixed(0), asmNs: (tAsm * 1e6 / enc.events).toFixed(0), writeNs: (tWrite * 1e6 / enc.events).toFixed(0), bytes: fs.statSync(out).size }));
