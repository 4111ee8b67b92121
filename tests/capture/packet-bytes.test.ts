/**
 * Live (root): the packet bytes of each event are the bytes that were sent, at every length
 * around the copy's word and DIRECT_COPY_MAX (256) edges, with the real Ethernet header of the
 * loopback and with the fake one the capture writes when an skb has no MAC header yet (a datagram
 * dropped by an nft output rule). With --snaplen 1500, the default 255 and 61 (truncated).
 *
 * Traffic: a few UDP datagrams on the loopback of a namespace made here. Where the kernel lets
 * tp_btf programs load packet bytes directly (bpf/features.ts directPacketLoads) this checks that
 * path, elsewhere bpf_probe_read_kernel's.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { probeFeatures } from '../../bpf/features.ts';
import { liveIt } from '../bpf/helpers.ts';
import { captureSkipReason, loadRows, lazyNetns, runCapture } from './run-capture.ts';

const skip = captureSkipReason(['ip', 'nft', 'bash']);
if (skip) console.log(`SKIP packet bytes tests: ${skip}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-packet-bytes-'));
const lo = lazyNetns('pkt');
const SENT_PORT = 7791; // nothing listens: delivered up to UDP, then dropped (no socket)
const OUT_DROP_PORT = 7792; // dropped by an nft output rule, before any MAC header exists
// Payload sizes: frames of 43 to 1042 bytes (14 + 20 + 8 + n), around 8-byte words, 255 and 256.
const SIZES = [1, 7, 8, 9, 100, 201, 213, 214, 215, 300, 1000];

/** A payload that differs by size and position (printable: sent with bash's printf). */
const payload = (n: number): string => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7 + n) % 26))).join('');

/** The frame the capture must report for a datagram of `n` bytes to `port` (IP id and checksum aside). */
function checkFrame(data: Uint8Array, caplen: number, len: number, n: number, port: number, where: string): void {
  const frame = 14 + 20 + 8 + n;
  expect(len, `${where}: packet.len`).toBe(frame);
  expect(data.length, `${where}: bytes captured`).toBe(caplen);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  // Loopback's Ethernet header and the capture's fake one are alike: zero addresses, IPv4.
  expect([...data.subarray(0, 12)].every((b) => b === 0), `${where}: Ethernet addresses`).toBe(true);
  expect(dv.getUint16(12), `${where}: ethertype`).toBe(0x0800);
  expect(data[14], `${where}: IPv4 version/IHL`).toBe(0x45);
  expect(dv.getUint16(16), `${where}: IP total length`).toBe(20 + 8 + n);
  expect(data[23], `${where}: IP protocol`).toBe(17);
  expect(dv.getUint16(36), `${where}: UDP port`).toBe(port);
  expect(dv.getUint16(38), `${where}: UDP length`).toBe(8 + n);
  const want = Buffer.from(payload(n)).subarray(0, Math.max(0, caplen - 42));
  expect(Buffer.from(data.subarray(42)).equals(want), `${where}: payload bytes`).toBe(true);
}

/** The namespace, with its nft output rule. */
let ruled = false;
function namespace(): string {
  const ns = lo.name();
  if (!ruled) {
    const rules = `table inet rts_pkt {\n chain out {\n  type filter hook output priority 0;\n  udp dport ${OUT_DROP_PORT} drop\n }\n}\n`;
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: rules });
    ruled = true;
  }
  return ns;
}

describe('capture: packet bytes', () => {
  afterAll(() => {
    lo.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  // Above DIRECT_COPY_MAX, the default, and a snap length under it that is not a multiple of 8,
  // without skb tracking (a program of another shape for the verifier).
  const runs: { snaplen: number; args: string[] }[] = [
    { snaplen: 1500, args: [] },
    { snaplen: 255, args: [] },
    { snaplen: 61, args: ['-c', 'skb,skb-drop'] },
  ];
  for (const { snaplen, args } of runs) {
    liveIt(
      `every event carries the datagram's bytes (${['--snaplen', snaplen, ...args].join(' ')}; ${probeFeatures().directPacketLoads.reason})`,
      skip,
      async () => {
        const ns = namespace();
        const script = SIZES.map((n) => `printf '%s' '${payload(n)}' > /dev/udp/127.0.0.1/${SENT_PORT}; { printf '%s' '${payload(n)}' > /dev/udp/127.0.0.1/${OUT_DROP_PORT}; } 2>/dev/null || :`).join('; ');
        // The nft drop makes each send to OUT_DROP_PORT fail (EPERM): expected, not an error.
        fs.writeFileSync(path.join(tmp, 'send.sh'), `${script}\n`);
        const dir = path.join(tmp, `cap-${snaplen}`);
        // Bounded generously: under an emulated CPU (the 6.1 guest of tests/vm) a start takes ~40 s.
        const run = await runCapture(['-o', dir, '--snaplen', String(snaplen), ...args, '--cmd', `ip netns exec ${ns} bash ${path.join(tmp, 'send.sh')}`], { timeoutMs: 150_000 });
        expect(run.status, run.stderr).toBe(0);

        const collectsNs = !args.includes('-c');
        const nsInum = Number(execFileSync('ip', ['netns', 'exec', ns, 'stat', '-L', '-c', '%i', '/proc/self/ns/net'], { encoding: 'utf8' }).trim());
        // struct net has had its u64 net_cookie since 5.14: this kernel and the 6.1 guest.
        const cookies = Number(os.release().split('.')[0]) >= 6;
        const rows = await loadRows(
          dir,
          `SELECT symbol, dport, packet.data AS data, packet.capture_len AS caplen, packet.len AS len, dev_name, netns.inum AS inum, netns.cookie AS cookie
           FROM events WHERE proto = 'udp' AND dport IN (${SENT_PORT}, ${OUT_DROP_PORT}) AND saddr = '127.0.0.1'`,
        );
        const seen = new Map<string, number>();
        for (const r of rows) {
          const port = Number(r.dport);
          const len = Number(r.len);
          const n = len - 42;
          expect(SIZES, `a datagram of ${n} bytes was sent`).toContain(n);
          const where = `${String(r.symbol)} ${n} B to ${port}`;
          checkFrame(r.data as Uint8Array, Number(r.caplen), len, n, port, where);
          expect(Number(r.caplen), `${where}: capture length`).toBe(Math.min(snaplen, len));
          seen.set(`${String(r.symbol)}/${port}`, (seen.get(`${String(r.symbol)}/${port}`) ?? 0) + 1);
          if (collectsNs) {
            // The output drops happen before the skb has a device: their netns comes from the
            // skb's socket (sk_netns() in capture.bpf.c), the others' from the device.
            if (port === OUT_DROP_PORT) expect(r.dev_name, `${where}: no device yet`).toBeNull();
            expect(Number(r.inum), `${where}: netns inum`).toBe(nsInum);
            if (cookies) expect(r.cookie, `${where}: netns cookie`).not.toBeNull();
          }
        }
        // Each datagram is seen leaving and entering lo, and dropped without a socket; each one to
        // the output-dropped port only at its drop, without a MAC header (the fake Ethernet one).
        expect(Object.fromEntries(seen)).toEqual({
          [`net:net_dev_start_xmit/${SENT_PORT}`]: SIZES.length,
          [`net:netif_receive_skb/${SENT_PORT}`]: SIZES.length,
          [`skb:kfree_skb/${SENT_PORT}`]: SIZES.length,
          [`skb:kfree_skb/${OUT_DROP_PORT}`]: SIZES.length,
        });
      },
      180_000,
    );
  }
});
