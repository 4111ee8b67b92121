/**
 * npm run bench -- NAME [options]: run one benchmark; each prints its progress on stderr
 * and one JSON summary line last on stdout.
 *   analyze   --events N   offline half: ingest, load, sort, drops vs DuckDB bounds
 *   query     --events N   query language: compile time and queries vs hand-written SQL
 *   pcapng                 pcap-ng writer packets/s
 *   ringbuf                BPF ring buffer into JS vs a C consumer (root)
 *   capture                retis-capture events/s, overhead, RSS (root)
 *   filter                 -f/-m that reject everything vs no filter: flood packets/s (root)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCHES: Record<string, string> = {
  analyze: 'bench/analyze.ts',
  query: 'bench/query.ts',
  pcapng: 'bench/pcapng.ts',
  ringbuf: 'bench/ringbuf.ts',
  capture: 'bench/capture.ts',
  filter: 'bench/filter.ts',
};

const [name, ...rest] = process.argv.slice(2);
const file = name ? BENCHES[name] : undefined;
if (!file) {
  process.stderr.write(`usage: npm run bench -- ${Object.keys(BENCHES).join('|')} [options]\n`);
  process.exit(2);
}
if (!fs.existsSync(path.join(ROOT, file))) {
  process.stderr.write(`bench ${name}: ${file} is not part of this checkout\n`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, file), ...rest], { stdio: 'inherit', cwd: ROOT });
process.exit(r.status ?? 1);
