#!/usr/bin/env node
// Build the native capture support: BPF objects (clang -target bpf, CO-RE) and the N-API addon
// (node-gyp, offline). Plain JavaScript on purpose: it runs from the package "install" hook, where
// nothing may be assumed to work.
//
//   node bpf/build.mjs              build everything, exit 1 with the reason on failure (npm run build:bpf)
//   node bpf/build.mjs --optional   install hook: never fails; prints one line when it cannot build
//   options: --force (rebuild all), --verbose, --only=bpf|native|analyze, --build-dir=DIR
//
// Outputs (all under build/, gitignored):
//   build/include/vmlinux.h          kernel types from BTF (bpftool); CO-RE relocates them at load
//   build/include/<name>.layout.h    C structs generated from *.layout.ts (the single record definition)
//   build/bpf/<name>.bpf.o           one BPF object per *.bpf.c
//   build/bpf/<name>.<v>.bpf.o       its variants (<name>.variants.ts: constants fixed at compile time)
//   build/native/retis_bpf.node      the addon
//   build/native/retis_json.node     the analyzer's JSON reader (analyze/native; built first, on its own)
//   build/bpf-build.json             what was built, with which tools (read by bpf/native.ts for messages)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDirArg = process.argv.find((a) => a.startsWith('--build-dir='))?.slice(12);
// --build-dir: build elsewhere (tests of this script); the default is the one bpf/native.ts reads.
const BUILD = buildDirArg ? resolve(buildDirArg) : join(ROOT, 'build');
const LOG = join(BUILD, 'bpf-build.log');
const INSTALL_HINT = 'apt-get install clang libbpf-dev libelf-dev libpcap-dev bpftool make g++, then npm run build:bpf';

/** Directories scanned for BPF sources (*.bpf.c) and record layouts (*.layout.ts). */
export const SOURCE_DIRS = ['bpf/progs', 'capture/progs', 'tests/bpf/progs', 'bench/ringbuf'];

const args = new Set(process.argv.slice(2).filter((a) => !a.startsWith('--build-dir=')));
const optional = args.has('--optional');
const force = args.has('--force');
const verbose = args.has('--verbose');
const only = [...args].find((a) => a.startsWith('--only='))?.slice(7);

class BuildError extends Error {
  constructor(message, hint) {
    super(message);
    this.hint = hint;
  }
}

function log(line) {
  appendFileSync(LOG, line.endsWith('\n') ? line : `${line}\n`);
  if (verbose) process.stderr.write(`${line}\n`);
}

/** Run a command; returns stdout. Throws BuildError with the tail of its output on failure. */
function run(cmd, argv, opts = {}) {
  log(`$ ${cmd} ${argv.join(' ')}`);
  const { quietStdout, ...spawnOpts } = opts;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...spawnOpts });
  if (r.error) {
    const missing = r.error.code === 'ENOENT';
    throw new BuildError(missing ? `${cmd} not found` : `${cmd}: ${r.error.message}`, missing ? INSTALL_HINT : undefined);
  }
  if (!quietStdout) log(r.stdout ?? '');
  log(r.stderr ?? '');
  if (r.status !== 0) {
    const tail = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-25).join('\n');
    throw new BuildError(`${basename(cmd)} failed (exit ${r.status}):\n${tail}`);
  }
  return r.stdout ?? '';
}

function which(names) {
  for (const n of names) {
    if (n.includes('/')) {
      if (existsSync(n)) return n;
      continue;
    }
    for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin'])) {
      if (d && existsSync(join(d, n))) return join(d, n);
    }
  }
  return undefined;
}

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const newest = (paths) => Math.max(0, ...paths.map(mtime));

function listFiles(dir, suffix) {
  const abs = join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).filter((f) => f.endsWith(suffix)).sort().map((f) => join(abs, f));
}

//// TOOLCHAIN ////

const BPF_ARCH = { x64: 'x86', arm64: 'arm64', arm: 'arm', s390x: 's390', ppc64: 'powerpc', riscv64: 'riscv', loong64: 'loongarch' };
const MULTIARCH = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf', s390x: 's390x-linux-gnu', ppc64: 'powerpc64le-linux-gnu', riscv64: 'riscv64-linux-gnu' };

function findClang() {
  const clang = process.env.CLANG ?? which(['clang', 'clang-19', 'clang-18', 'clang-17', 'clang-16', 'clang-15', 'clang-14', 'clang-13', 'clang-12', 'clang-11']);
  if (!clang) throw new BuildError('clang not found', INSTALL_HINT);
  const out = run(clang, ['--version']);
  const m = /clang version (\d+)\.(\d+)/.exec(out);
  if (m && Number(m[1]) < 11) throw new BuildError(`clang ${m[1]} is too old for BPF CO-RE (need >= 11)`, INSTALL_HINT);
  const targets = run(clang, ['-print-targets']);
  if (!/\bbpf\b/.test(targets)) throw new BuildError(`${clang} has no bpf target`, INSTALL_HINT);
  // Optional: strips DWARF (keeps .BTF/.BTF.ext), 740 KB -> 100 KB per object.
  const strip = which(m ? [`llvm-strip-${m[1]}`, 'llvm-strip'] : ['llvm-strip']);
  return { clang, version: m ? `${m[1]}.${m[2]}` : 'unknown', strip };
}

function findLibbpf() {
  const inc = ['/usr/include', '/usr/local/include'].find((d) => existsSync(join(d, 'bpf', 'bpf_helpers.h')));
  if (!inc) throw new BuildError('libbpf headers not found (bpf/bpf_helpers.h)', INSTALL_HINT);
  let version = 'unknown';
  const vh = join(inc, 'bpf', 'libbpf_version.h');
  if (existsSync(vh)) {
    const s = readFileSync(vh, 'utf8');
    const maj = /LIBBPF_MAJOR_VERSION\s+(\d+)/.exec(s)?.[1];
    const min = /LIBBPF_MINOR_VERSION\s+(\d+)/.exec(s)?.[1];
    if (maj && min) version = `${maj}.${min}`;
    if (maj && Number(maj) < 1) throw new BuildError(`libbpf ${version} is too old (need >= 1.0)`, INSTALL_HINT);
  }
  return { include: inc, version };
}

//// STEPS ////

function generateVmlinux(inc) {
  const out = join(inc, 'vmlinux.h');
  if (existsSync(out) && !force) return out;
  const src = process.env.RETIS_VMLINUX_BTF ?? '/sys/kernel/btf/vmlinux';
  const committed = join(ROOT, 'bpf', 'vmlinux.h');
  if (!existsSync(src)) {
    // CO-RE: any kernel's types will do for compiling; a header provided by hand is accepted.
    if (existsSync(committed)) {
      copyFileSync(committed, out);
      return out;
    }
    throw new BuildError(`${src} not found: cannot generate vmlinux.h (kernel without BTF?)`, 'set RETIS_VMLINUX_BTF=/path/to/vmlinux (any BTF-enabled kernel), or put a vmlinux.h in bpf/vmlinux.h');
  }
  const bpftool = which(['bpftool', '/usr/sbin/bpftool']);
  if (!bpftool) throw new BuildError('bpftool not found (needed to generate vmlinux.h)', INSTALL_HINT);
  const header = run(bpftool, ['btf', 'dump', 'file', src, 'format', 'c'], { quietStdout: true });
  writeFileSync(out, header);
  return out;
}

/** A TypeScript module of this tree (layouts, variants), through tsx. */
async function importTs(file) {
  let tsImport;
  try {
    ({ tsImport } = await import('tsx/esm/api'));
  } catch {
    throw new BuildError(`tsx is not installed (needed to read ${relative(ROOT, file)})`, 'run npm install first');
  }
  return tsImport(pathToFileURL(file).href, import.meta.url);
}

async function generateLayouts(inc) {
  const files = SOURCE_DIRS.flatMap((d) => listFiles(d, '.layout.ts'));
  if (files.length === 0) return [];
  const layoutMod = await importTs(join(ROOT, 'bpf', 'layout.ts'));
  const outs = [];
  for (const f of files) {
    const mod = await importTs(f);
    const rel = relative(ROOT, f);
    const header = layoutMod.generateCHeader(mod, rel);
    const out = join(inc, basename(f).replace(/\.ts$/, '.h'));
    // Rewrite only on change so unchanged objects are not rebuilt.
    if (!existsSync(out) || readFileSync(out, 'utf8') !== header) writeFileSync(out, header);
    outs.push(out);
  }
  return outs;
}

/**
 * Variants of each x.bpf.c that has an x.variants.ts beside it (its `variants`: name and constants
 * fixed at compile time, see bpf/probe-set.ts). Returns { src: [{ name, fixed }] }.
 */
async function readVariants() {
  const out = {};
  for (const src of SOURCE_DIRS.flatMap((d) => listFiles(d, '.bpf.c'))) {
    const file = src.replace(/\.bpf\.c$/, '.variants.ts');
    if (!existsSync(file)) continue;
    const { variants } = await importTs(file);
    for (const v of variants ?? []) {
      if (!/^[a-z0-9-]+$/.test(v.name)) throw new BuildError(`${relative(ROOT, file)}: variant name '${v.name}' (lower-case letters, digits, '-')`);
      for (const [k, x] of Object.entries(v.fixed)) {
        if (!/^[A-Za-z_]\w*$/.test(k) || !Number.isInteger(x)) throw new BuildError(`${relative(ROOT, file)}: variant ${v.name}: ${k} = ${x} (a constant's name and an integer)`);
      }
    }
    out[src] = variants ?? [];
  }
  return out;
}

/**
 * Compile every x.bpf.c to x.bpf.o, and each of its variants to x.<variant>.bpf.o with
 * -DRETIS_FIXED_<constant>=<value>. Returns the objects and the variants built
 * ([{ source: 'x', name, object, fixed }], recorded in bpf-build.json: user space picks variants
 * from what was built, so an object's fixed values and what the loader believes never differ).
 */
function compileBpf(tc, lib, inc, variantsOf) {
  const arch = BPF_ARCH[process.arch];
  if (!arch) throw new BuildError(`unsupported architecture for BPF tracing: ${process.arch}`);
  const multiarch = MULTIARCH[process.arch];
  const outDir = join(BUILD, 'bpf');
  mkdirSync(outDir, { recursive: true });
  const headers = [
    ...readdirSync(inc).map((f) => join(inc, f)),
    ...readdirSync(join(ROOT, 'bpf', 'include', 'retis')).map((f) => join(ROOT, 'bpf', 'include', 'retis', f)),
  ];
  const flags = [
    '-O2', '-g', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`, '-Wall', '-Wno-unused-function',
    '-I', inc, '-I', join(ROOT, 'bpf', 'include'), '-I', lib.include,
  ];
  // <bpf/usdt.bpf.h> pulls <asm/errno.h>, which lives under the multiarch include dir.
  if (multiarch && existsSync(`/usr/include/${multiarch}`)) flags.push('-I', `/usr/include/${multiarch}`);
  const built = [];
  const variants = [];
  for (const src of SOURCE_DIRS.flatMap((d) => listFiles(d, '.bpf.c'))) {
    // Headers beside the program (e.g. capture/progs/ct.bpf.h) count too: a stale object would
    // load old code without a word.
    const local = readdirSync(dirname(src)).filter((f) => f.endsWith('.h')).map((f) => join(dirname(src), f));
    const inputs = newest([src, ...headers, ...local]);
    const stem = basename(src).replace(/\.bpf\.c$/, '');
    const builds = [{ out: join(outDir, `${stem}.bpf.o`), defines: [] }];
    for (const v of variantsOf[src] ?? []) {
      const out = join(outDir, `${stem}.${v.name}.bpf.o`);
      builds.push({ out, defines: Object.entries(v.fixed).map(([k, x]) => `-DRETIS_FIXED_${k}=${x}`) });
      variants.push({ source: stem, name: v.name, object: basename(out), fixed: v.fixed });
    }
    for (const { out, defines } of builds) {
      // The defines an object was built with, beside it: a variant whose values changed is rebuilt.
      const stamp = `${out}.defines`;
      const fresh = mtime(out) > inputs && existsSync(stamp) && readFileSync(stamp, 'utf8') === defines.join(' ');
      if (force || !fresh) {
        run(tc.clang, [...flags, ...defines, '-c', src, '-o', out]);
        // -g is needed for BTF (CO-RE, layouts, .rodata names); the DWARF that comes with it is not.
        if (tc.strip) run(tc.strip, ['-g', out]);
        writeFileSync(stamp, defines.join(' '));
      }
      built.push(relative(ROOT, out));
    }
  }
  return { objects: built, variants };
}

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(ROOT, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new BuildError('node-gyp not found', 'npm ships it; or npm install -g node-gyp');
  return found;
}

/** Node headers without network: npm_config_nodedir, else the running node's prefix, else /usr. */
function findNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const major = process.versions.node.split('.')[0];
  const prefixes = [join(dirname(process.execPath), '..'), '/usr', '/usr/local'];
  for (const p of prefixes) {
    const vh = join(p, 'include', 'node', 'node_version.h');
    if (!existsSync(join(p, 'include', 'node', 'node_api.h')) || !existsSync(vh)) continue;
    const m = /#define NODE_MAJOR_VERSION (\d+)/.exec(readFileSync(vh, 'utf8'));
    if (m && m[1] === major) return p;
  }
  return undefined; // node-gyp will try to download headers (fails offline: reported below)
}

/** node-gyp rebuild of `dir` (offline); `defines` are gyp variables. */
function nodeGypBuild(dir, defines = {}) {
  if (!which(['make'])) throw new BuildError('make not found', INSTALL_HINT);
  if (!which(['g++', 'c++', 'clang++'])) throw new BuildError('a C++ compiler (g++) is needed by node-gyp', INSTALL_HINT);
  if (!which(['python3', 'python'])) throw new BuildError('python3 not found (node-gyp needs it)', 'apt-get install python3');
  const nodeGyp = findNodeGyp();
  const nodedir = findNodeDir();
  const gypArgs = [nodeGyp, 'rebuild', '--directory', dir, '--loglevel=warn'];
  if (nodedir) gypArgs.push(`--nodedir=${nodedir}`);
  for (const [k, v] of Object.entries(defines)) gypArgs.push(`--${k}=${v}`);
  try {
    run(process.execPath, gypArgs);
  } catch (e) {
    if (!nodedir && /ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ECONNREFUSED|headers/.test(String(e.message))) {
      throw new BuildError('node-gyp could not download Node headers (offline?)', 'install the Node headers (e.g. nodesource "nodejs" ships /usr/include/node) or set npm_config_nodedir');
    }
    throw e;
  }
  return nodedir ?? null;
}

function buildNative() {
  const dir = join(ROOT, 'bpf', 'native');
  const nodedir = nodeGypBuild(dir);
  const out = join(BUILD, 'native');
  mkdirSync(out, { recursive: true });
  copyFileSync(join(dir, 'build', 'Release', 'retis_bpf.node'), join(out, 'retis_bpf.node'));
  return { addon: relative(ROOT, join(out, 'retis_bpf.node')), nodedir: nodedir ?? null };
}

/**
 * The analyzer's JSON reader (analyze/native): needs only a C compiler and Node headers, so
 * it is built even where the capture side cannot be. It links the libduckdb.so that
 * @duckdb/node-bindings ships (found the way that package finds its own addon), by SONAME:
 * at run time the already loaded copy is used, one DuckDB in the process.
 */
function buildAnalyzer() {
  let libDir;
  try {
    const require = createRequire(join(ROOT, 'package.json'));
    const bindings = dirname(require.resolve('@duckdb/node-bindings/package.json'));
    const pkg = `@duckdb/node-bindings-${process.platform}-${process.arch}/package.json`;
    libDir = dirname(createRequire(join(bindings, 'package.json')).resolve(pkg));
  } catch {
    throw new BuildError('@duckdb/node-bindings for this platform is not installed', 'run npm install first');
  }
  if (!existsSync(join(libDir, 'libduckdb.so'))) throw new BuildError(`no libduckdb.so in ${libDir}`);
  const dir = join(ROOT, 'analyze', 'native');
  nodeGypBuild(dir, { duckdb_lib_dir: libDir });
  const out = join(BUILD, 'native');
  mkdirSync(out, { recursive: true });
  copyFileSync(join(dir, 'build', 'Release', 'retis_json.node'), join(out, 'retis_json.node'));
  return relative(ROOT, join(out, 'retis_json.node'));
}

//// MAIN ////

async function main() {
  mkdirSync(BUILD, { recursive: true });
  writeFileSync(LOG, `build started ${new Date().toISOString()} node ${process.version}\n`);
  const status = { ok: false, time: new Date().toISOString(), node: process.version, errors: [] };
  const statusFile = join(BUILD, 'bpf-build.json');
  const previousStatus = () => {
    try {
      return JSON.parse(readFileSync(statusFile, 'utf8'));
    } catch {
      return {}; // none yet
    }
  };
  const save = () => writeFileSync(statusFile, `${JSON.stringify(status, null, 2)}\n`);
  // The analyzer's reader first, whatever happens to the capture side: retis-query reads
  // JSON faster with it, and works without it (analyze/load/native-json.ts).
  if (!only || only === 'analyze') {
    try {
      status.analyzerAddon = buildAnalyzer();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      status.analyzerError = msg;
      log(`analyzer addon: ${msg}`);
      process.stderr.write(`retis-ts: native JSON reader not built (${msg.split('\n')[0]}); retis-query uses DuckDB's read_json\n`);
    }
    if (only === 'analyze') {
      // Keep what an earlier full build recorded (bpf/native.ts reads it for its messages).
      const previous = previousStatus();
      delete previous.analyzerError;
      writeFileSync(statusFile, `${JSON.stringify({ ...previous, analyzerAddon: status.analyzerAddon, ...(status.analyzerError ? { analyzerError: status.analyzerError } : {}) }, null, 2)}\n`);
      return status.analyzerError && !optional ? 1 : 0;
    }
  }
  try {
    if (process.platform !== 'linux') {
      throw new BuildError(`native capture support needs Linux (this is ${process.platform}); analysis works without it`);
    }
    if (only !== 'native') {
      const tc = findClang();
      const lib = findLibbpf();
      Object.assign(status, { clang: tc.version, libbpfHeaders: lib.version });
      const inc = join(BUILD, 'include');
      mkdirSync(inc, { recursive: true });
      generateVmlinux(inc);
      status.layouts = (await generateLayouts(inc)).map((p) => relative(ROOT, p));
      Object.assign(status, compileBpf(tc, lib, inc, await readVariants()));
    } else {
      // The objects an earlier build made are still there: keep their record (variants above all,
      // which user space loads from what is recorded).
      const { clang, libbpfHeaders, layouts, objects, variants } = previousStatus();
      Object.assign(status, { clang, libbpfHeaders, layouts, objects, variants });
    }
    if (only !== 'bpf') Object.assign(status, buildNative());
    status.ok = true;
    save();
    process.stderr.write(`retis-ts: native capture support built (${(status.objects ?? []).length} BPF objects${status.addon ? ', addon' : ''}) in build/\n`);
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    status.errors.push(msg);
    save();
    log(`error: ${msg}`);
    const first = msg.split('\n')[0];
    const hint = e instanceof BuildError && e.hint ? `: ${e.hint}` : '';
    if (optional) {
      // One line, never a failed npm install: analysis does not need any of this.
      process.stderr.write(`retis-ts: native capture support not built (${first})${hint} [details: ${relative(process.cwd(), LOG)}]\n`);
      return 0;
    }
    process.stderr.write(`retis-ts: native build failed: ${msg}${hint ? `\n  fix${hint}` : ''}\n  full log: ${relative(process.cwd(), LOG)}\n`);
    return 1;
  }
}

process.exitCode = await main().catch((e) => {
  // Even a bug in this script must not break `npm install` in optional mode.
  process.stderr.write(`retis-ts: native build crashed: ${e?.stack ?? e}\n`);
  return optional ? 0 : 1;
});
