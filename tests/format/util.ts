/** Test helpers for the text format; readers shared with other suites live in tests/util. */
import { readFileSync } from 'node:fs';
import { pcapngComments as commentsOf } from '../util/pcapng.ts';

export { COMPAT_DIR } from '../util/paths.ts';
export { parseEvent, parseSeries, readEvents } from '../util/retis-json.ts';

/** Comments (option 1) of every Enhanced Packet Block of a pcap-ng file. */
export function pcapngComments(file: string): string[] {
  return commentsOf(readFileSync(file));
}

/** Bytes from a base64 string (test packets are quoted from Retis's tests that way). */
export function b64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Bytes from a hex string; whitespace ignored. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}
