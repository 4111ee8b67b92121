// Whether dist/retis-capture.mjs (capture/bundle.mjs) is built from the sources as they are: what
// bin/retis-capture.js runs when it is, instead of compiling the TypeScript through tsx at each
// start (1.5-1.8 s to attached on the development host, 0.6-0.9 s from the bundle).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The directories the bundle's own code comes from (its other inputs are npm packages). */
const SOURCES = ['capture', 'bpf', 'analyze'];

/** The newest modification time of the .ts files below `dir`. */
function newestSource(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const f = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(f));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(f).mtimeMs);
  }
  return t;
}

/** The bundle's path when it is newer than every source it is built from, else undefined. */
export function freshBundle() {
  const bundle = join(ROOT, 'dist', 'retis-capture.mjs');
  if (!existsSync(bundle)) return undefined;
  const built = statSync(bundle).mtimeMs;
  return SOURCES.some((d) => newestSource(join(ROOT, d)) > built) ? undefined : bundle;
}
