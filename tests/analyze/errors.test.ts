/**
 * Bad input: one message naming the file and line, exit 1, no stack trace; and what is
 * still readable from a damaged file with --skip-bad-lines.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { retisQuery } from '../util/cli.ts';
import { compat } from '../util/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-errors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const STARTUP =
  '{"common":{"timestamp":1},"startup":{"retis_version":"v1.7.0","cmdline":"t","clock_monotonic_offset":{"sec":0,"nsec":0},"machine":{"kernel_release":"r","kernel_version":"v","hardware_name":"h"}}}';
const EVENT = (ts: number) => `{"common":{"timestamp":${ts}},"kernel":{"symbol":"skb:kfree_skb","probe_type":"raw_tracepoint"},"skb-drop":{"drop_reason":"NO_SOCKET"}}`;

function file(name: string, content: string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
}

const CASES: [string, string, RegExp][] = [
  ['empty', '', /empty\.json: File is empty$/],
  ['truncated last line', `${STARTUP}\n${EVENT(2)}\n{"common":{"timest`, /truncated\.json:3: not valid JSON/],
  ['a non-JSON line', `${STARTUP}\n${EVENT(2)}\nhello world\n${EVENT(3)}\n`, /nonjson\.json:3: not valid JSON/],
  ['a wrong type', `${STARTUP}\n${EVENT(2)}\n{"common":{"timestamp":"soon"}}\n`, /wrongtype\.json:3: wrong type or shape/],
  ['an unknown future version', STARTUP.replace('v1.7.0', 'v3.1.0'), /future\.json:1: written by Retis v3\.1\.0, a format newer than this reader knows/],
  ['no startup event', `${EVENT(2)}\n`, /nostartup\.json:1: Cannot find version in startup event/],
  ['an array where an event is expected', `${STARTUP}\n[1,2]\n`, /array\.json:2: expected an event \(JSON object\)/],
];
const FILES = ['empty', 'truncated', 'nonjson', 'wrongtype', 'future', 'nostartup', 'array'];

describe('bad input', () => {
  it.each(CASES.map((c, i) => [...c, FILES[i]!] as const))('%s → one line naming file and line, exit 1', (_what, content, message, name) => {
    const p = file(`${name}.json`, content);
    const r = retisQuery(['print', p]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
  });

  it('a section of the wrong shape (Retis test_events_packets_invalid_ct.json) names the line', () => {
    const r = retisQuery(['print', compat('test_events_packets_invalid_ct.json')]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/test_events_packets_invalid_ct\.json:8: section "ct" lacks required field "ct_status"/);
  });

  it('usage errors exit 2', () => {
    expect(retisQuery(['pcap', compat('test_events.json')]).status).toBe(2);
    expect(retisQuery(['print', '--format', 'xml', compat('test_events.json')]).status).toBe(2);
    expect(retisQuery(['print', '--bogus']).status).toBe(2);
  });
});

describe('what is still readable from a damaged file (--skip-bad-lines)', () => {
  it('every good line of a truncated or corrupted file is loaded, the damage reported', () => {
    const p = file('damaged.json', `${STARTUP}\n${EVENT(2)}\nnot json\n${EVENT(4)}\n{"common":{"timestamp":"x"}}\n${EVENT(6)}\n{"common":{"tim`);
    const r = retisQuery(['stats', '--skip-bad-lines', '--format', 'json', p]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('{"kind":"events","key":"total","count":3}');
    expect(r.stderr).toMatch(/damaged\.json: skipped 3 damaged record\(s\); first at line 3/);
  });

  it('the invalid-ct file keeps its other events', () => {
    const r = retisQuery(['stats', '--skip-bad-lines', compat('test_events_packets_invalid_ct.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Number of events: \d+/);
    expect(r.stderr).toMatch(/skipped \d+ damaged record\(s\); first at line 8: section "ct" lacks required field "ct_status"/);
  });
});
