#!/usr/bin/env -S node --max-semi-space-size=4
// (The young-generation cap: see capture/bundle.mjs.)
// Launcher: run the TypeScript sources directly through tsx's loader (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../capture/cli.ts');
process.exitCode = await main(process.argv.slice(2));
