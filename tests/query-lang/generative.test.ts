/**
 * Generative: random token sequences, and random edits of valid queries, each either
 * yields rows or positioned issues — never a crash, never a database error leaking out
 * (a `runtime_error` means the compiler let through SQL DuckDB rejects).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutputFormat } from '../../analyze/output.ts';
import { QueryError } from '../../query-lang/errors.ts';
import { compat } from '../util/paths.ts';
import { load, query, type Loaded } from './util.ts';

/** sfc32: small, seedable, deterministic. */
function rng(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rq-gen-'));
const PCAP = JSON.stringify(path.join(tmp, 'out.pcapng'));

const VOCAB = [
  // sources
  'events', 'drops', 'tracks', 'upcalls', 'packets',
  // keywords and stages
  'where', 'and', 'or', 'not', 'in', 'between', '|', '|', '|', 'count', 'by', 'top', 'sort', 'fields', 'order', 'asc', 'desc',
  'limit', 'stats', 'histogram', 'every', 'pcap', PCAP, 'as', 'true', 'false', '&&', '||', '!',
  // fields
  'reason', 'dev', 'probe', 'proto', 'saddr', 'daddr', 'sport', 'dport', 'len', 'ts', 'time', 'elapsed', 'track', 'netns', 'cpu',
  'comm', 'pid', 'drop', 'smac', 'ct.state', 'nft.verdict', 'ct.orig.ip.src', 'skb.meta.len', 'ovs.event_type', 'ovs', 'ct', 'skb-drop',
  'duration', 'events', 'fate', 'devs', 'probes', 'latency', 'outcome', 'nat', 'count', 'first_ts', 'p50', 'host', 'src', 'dst', 'port', 'net',
  // functions
  'any(', 'all(', 'first(', 'last(', 'foo(', '(', ')', ',', '.',
  // operators
  '=', '!=', '<', '<=', '>', '>=', '~', '!~', '==',
  // values
  '0', '1', '-1', '98', '53', '0x62', '1.5', '"veth-ns01"', '"tp:net:netif_receive_skb"', "'x'", '"*ovs*"', 'NO_SOCKET', 'NETFILTER_DROP', 'udp',
  'icmp', 'established', 'dropped', 'executed', 'veth-ns01', 'kfree_skb', 'tp:skb:kfree_skb', 'kprobe:ip_rcv', '192.168.125.10', '10.0.0.0/8',
  '192.168.125.0/26', 'fe80::1', '2001:db8::/32', 'aa:bb:cc:dd:ee:ff', '5ms', '100us', '2s', '2024-05-01T10:00:00Z', '2023-01-01',
  '#1baa83c42ba1ffff8e95c3b67c00', '"unterminated', '$', '/', '*', ';', '99999999999999999999999', '-0x10',
];

const VALID = [
  'drops where reason = NO_SOCKET',
  'drops | count by reason',
  'events where dev = "veth-ns01" and proto = icmp | count',
  'events where probe = "tp:net:netif_receive_skb" | count by dev',
  'tracks where any(drop) | limit 5',
  'upcalls | stats latency',
  'events where saddr in 192.168.125.0/24 and not (len < 60 or ts > 5) | top 3 by dev',
  'tracks where all(proto = icmp) and duration > 10us | fields track, first(dev), fate | order by track desc',
  'events | histogram elapsed every 100ms',
  'events where src host 192.168.125.10 and smac ~ "fa:*" | fields eid, smac | limit 3',
  'events | count by cpu, comm | where count > 1 | order by comm',
  'tracks | stats events by fate',
  'drops | sort',
];

function randomTokens(r: () => number): string {
  const n = 1 + Math.floor(r() * 14);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(VOCAB[Math.floor(r() * VOCAB.length)]!);
  // Glue a '(' after a function name, as people type it.
  return out.join(' ').replace(/\( /g, '(');
}

/** Tokens that can stand in for one another: an edit within a class often stays valid. */
const CLASSES: string[][] = [
  ['reason', 'dev', 'probe', 'proto', 'saddr', 'daddr', 'sport', 'dport', 'len', 'ts', 'elapsed', 'netns', 'cpu', 'comm', 'pid', 'ct.state', 'skb.meta.len', 'smac', 'track'],
  ['=', '!=', '<', '<=', '>', '>=', '~', '!~'],
  ['0', '1', '98', '53', '0x62', '"veth-ns01"', 'NO_SOCKET', 'udp', 'icmp', 'established', '192.168.125.10', '10.0.0.0/8', 'fe80::1', '5ms', '"*ovs*"', 'kfree_skb'],
  ['and', 'or'],
  ['events', 'drops', 'tracks', 'upcalls'],
  ['count', 'sort'],
  ['asc', 'desc'],
];

function mutate(r: () => number): string {
  const toks = VALID[Math.floor(r() * VALID.length)]!.split(' ');
  const edits = r() < 0.7 ? 1 : 2;
  for (let e = 0; e < edits; e++) {
    const i = Math.floor(r() * toks.length);
    const cls = CLASSES.find((c) => c.includes(toks[i]!));
    const kind = r();
    if (cls && kind < 0.6) toks[i] = cls[Math.floor(r() * cls.length)]!;
    else if (kind < 0.75) toks.splice(i, 0, VOCAB[Math.floor(r() * VOCAB.length)]!);
    else if (kind < 0.9) toks.splice(i, 1);
    else toks[i] = VOCAB[Math.floor(r() * VOCAB.length)]!;
  }
  return toks.join(' ');
}

const FORMATS: OutputFormat[] = ['json', 'table', 'text', 'csv'];

describe('generative', () => {
  let l: Loaded;
  beforeAll(async () => {
    l = await load([compat('test_events_packets.json')]);
  });
  afterAll(() => {
    l.db.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function check(text: string, format: OutputFormat): Promise<'rows' | 'issues'> {
    try {
      await query(l, text, format);
      return 'rows';
    } catch (e) {
      if (!(e instanceof QueryError)) throw new Error(`${JSON.stringify(text)} crashed: ${e instanceof Error ? e.stack : String(e)}`);
      for (const i of e.issues) {
        if (i.code === 'runtime_error') throw new Error(`${JSON.stringify(text)}: the database rejected the compiled SQL: ${i.message}`);
        expect(i.span, `${JSON.stringify(text)}: ${i.code} without a span`).toBeDefined();
        expect(i.span!.start).toBeGreaterThanOrEqual(0);
        expect(i.span!.end).toBeGreaterThan(i.span!.start);
        expect(i.span!.end).toBeLessThanOrEqual(text.length + 1);
        expect(i.message.length).toBeGreaterThan(0);
        expect(i.message).not.toMatch(/\n/);
      }
      return 'issues';
    }
  }

  it('random token sequences: rows or positioned issues', async () => {
    const r = rng(20240501);
    const seen = { rows: 0, issues: 0 };
    for (let k = 0; k < 600; k++) seen[await check(randomTokens(r), FORMATS[k % FORMATS.length]!)]++;
    expect(seen.issues).toBeGreaterThan(0);
  }, 120_000);

  it('edits of valid queries: rows or positioned issues', async () => {
    const r = rng(7);
    const seen = { rows: 0, issues: 0 };
    for (let k = 0; k < 600; k++) seen[await check(mutate(r), FORMATS[k % FORMATS.length]!)]++;
    // Edits keep a fair share of queries valid: the compiler is exercised, not just the parser.
    expect(seen.rows).toBeGreaterThan(60);
    expect(seen.issues).toBeGreaterThan(100);
  }, 120_000);

  it('the valid queries all run', async () => {
    for (const q of VALID) expect(await check(q, 'json')).toBe('rows');
  });
});
