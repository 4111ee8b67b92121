#!/usr/bin/env -S node --max-semi-space-size=4
// (The young-generation cap: see capture/bundle.mjs.)
// Launcher: the bundle when it is built from the sources as they are (what ships; `npm install`
// and `npm run bundle:capture` build it), else the TypeScript sources through tsx's loader.
import { pathToFileURL } from 'node:url';
import { freshBundle } from '../capture/fresh-bundle.mjs';

const bundle = freshBundle();
if (bundle) {
  await import(pathToFileURL(bundle).href); // runs the CLI and sets process.exitCode
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../capture/cli.ts');
  process.exitCode = await main(process.argv.slice(2));
}
