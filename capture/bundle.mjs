#!/usr/bin/env node
// Bundle retis-capture into one file: dist/retis-capture.mjs (npm run bundle:capture).
//
// What ships: dist/retis-capture.mjs (+ dist/retis-schema.json, the pcap-ng schema block) and,
// beside dist/, build/native/retis_bpf.node and build/bpf/capture.bpf.o (npm run build:bpf): the
// bundle finds them at ../build like the sources do. DuckDB (native, only for --parquet) stays an
// external package, imported only when --parquet asks for it.
import { copyFileSync, mkdirSync, chmodSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(ROOT, 'dist', 'retis-capture.mjs');
// --optional (npm install): a bundle that cannot be built is a note, not a failure; the
// launcher (bin/retis-capture.js) then runs the sources through tsx.
const optional = process.argv.includes('--optional');
const giveUp = (why) => {
  process.stderr.write(`bundle: ${why}${optional ? '; bin/retis-capture.js runs the sources through tsx' : ''}\n`);
  process.exit(optional ? 0 : 1);
};
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  giveUp('esbuild is not installed (it comes with the dev dependencies: npm install)');
}
mkdirSync(join(ROOT, 'dist'), { recursive: true });
try {
  await esbuild.build({
    entryPoints: [join(ROOT, 'capture', 'entry.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // DuckDB is native: it stays a package, and loads only when --parquet runs the exporter. A
    // plain `external` would become a top-level import of the bundle (0.5 s and a dlopen at every
    // start); this shim turns it into a require() inside the lazily initialized exporter modules.
    plugins: [
      {
        name: 'lazy-duckdb',
        setup(b) {
          b.onResolve({ filter: /^@duckdb\// }, (args) =>
            args.namespace === 'lazy-duckdb' ? { path: args.path, external: true } : { path: args.path, namespace: 'lazy-duckdb' });
          b.onLoad({ filter: /.*/, namespace: 'lazy-duckdb' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
        },
      },
    ],
    // CommonJS dependencies inside an ESM bundle need `require`. The #! line caps V8's young
    // generation (semi-spaces of 4 MiB instead of up to 16): under a full-rate capture it grew to
    // 32 MiB and the process to 148-157 MiB RSS (bench/capture high-rate trigger, 30 s), 125-128
    // MiB with the cap, and as many events written for less CPU. V8 reads the flag only when the
    // heap is set up, so it must be on the command line: `node dist/retis-capture.mjs` runs
    // without it (the same capture, a larger heap).
    banner: { js: "#!/usr/bin/env -S node --max-semi-space-size=4\nimport { createRequire as __retisCreateRequire } from 'node:module';\nconst require = __retisCreateRequire(import.meta.url);" },
    legalComments: 'none',
    logLevel: 'warning',
  });
} catch (e) {
  giveUp(`esbuild failed: ${e.message}`);
}
chmodSync(out, 0o755);
copyFileSync(join(ROOT, 'analyze', 'pcap', 'retis-schema.json'), join(ROOT, 'dist', 'retis-schema.json'));
process.stderr.write(`bundle: ${out} (${(statSync(out).size / 1024).toFixed(0)} KiB)\n`);
