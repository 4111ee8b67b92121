/**
 * retis-capture on real traffic (root): two hosts in network namespaces joined by a veth pair
 * (topology.ts). Counts are checked exactly against the ground truth: the number of datagrams
 * sent, the nftables rule's counter, tcpdump on the same interface. Traffic stays inside the
 * namespaces this file creates and is bounded (a few hundred datagrams, a few seconds).
 *
 * Skipped, with the reason printed, when not root or when the native build is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { Btf } from '../../bpf/btf.ts';
import { probeFeatures } from '../../bpf/features.ts';
import { liveIt, usdtProvider } from '../bpf/helpers.ts';
import { readPcapng, optionText } from '../util/pcapng.ts';
import { compat } from '../util/paths.ts';
import { CAPTURE, captureSkipReason, loadRows, runCapture, until } from './run-capture.ts';
import { CLOSED_PORT, NFT_PORT, createTopology, type Topology } from './topology.ts';

const skip = captureSkipReason(['nft', 'tcpdump', 'ip']);
if (skip) console.log(`SKIP live capture tests: ${skip}`);

const N_NFT = 200;
const N_CLOSED = 150;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-live-capture-'));

const mode = (p: string): number => fs.statSync(p).mode & 0o777;

describe('retis-capture live (root, two netns + veth)', () => {
  let t: Topology;
  const children = new Set<ChildProcess>();

  beforeAll(() => {
    if (skip) return;
    t = createTopology();
  });

  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    t?.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  liveIt(
    'drops counted exactly (nft rule, closed port), receptions = tcpdump, one tracking id per packet, files 0600',
    skip,
    async () => {
      const dir = path.join(tmp, 'main');
      const pcap = path.join(tmp, 'tcpdump.pcap');
      // tcpdump on B's interface, ingress UDP only: the reference for receptions. libpcap's
      // TPACKET_V3 ring hands packets over when a block fills or its 1 s timeout expires, so a
      // SIGINT right after the traffic loses the last block: wait for the file (below) first.
      // (--immediate-mode is no cure: tcpdump then falls behind and the kernel drops some.)
      const td = spawn('ip', ['netns', 'exec', t.b, 'tcpdump', '-i', t.vethB, '-Q', 'in', '-n', '-U', '-B', '8192', '-w', pcap, 'udp'], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.add(td);
      let tdErr = '';
      td.stderr!.on('data', (d: Buffer) => (tdErr += d.toString()));
      await until(() => tdErr.includes('listening on'), 15_000, 'tcpdump to start');

      const r = await runCapture(['-o', dir, '--pcapng', '--parquet', '--cmd', `${t.sendScript(NFT_PORT, N_NFT)}; ${t.sendScript(CLOSED_PORT, N_CLOSED)}`]);
      // -U writes each packet as tcpdump reads it: give it up to 10 s to catch up on a loaded box.
      const pcapCount = (): number => spawnSync('tcpdump', ['-r', pcap, '-n'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).length;
      await until(() => pcapCount() >= N_NFT + N_CLOSED, 10_000, 'tcpdump to write every datagram').catch(() => undefined);
      td.kill('SIGINT');
      await new Promise((res) => td.once('exit', res));
      expect(r.stderr).toMatch(/stopped \(command exited \(status 0\)\)/);
      expect(r.status, r.stderr).toBe(0);

      const tcpdumpCount = pcapCount();
      expect(tcpdumpCount, `tcpdump: ${tdErr}`).toBe(N_NFT + N_CLOSED);
      expect(t.nftDropped()).toBe(N_NFT);

      // The directory loads through its Parquet file (clean stop); the Arrow stream holds the same.
      const count = `SELECT
          count(*) FILTER (WHERE probe = 'tp:net:netif_receive_skb' AND dev_name = '${t.vethB}' AND proto = 'udp') AS rx,
          count(*) FILTER (WHERE reason = 'NETFILTER_DROP' AND dport = ${NFT_PORT}) AS nft,
          count(*) FILTER (WHERE reason = 'NO_SOCKET' AND dport = ${CLOSED_PORT} AND proto = 'udp') AS closed,
          count(*) FILTER (WHERE startup IS NULL) AS events
        FROM events`;
      const [fromParquet] = await loadRows(dir, count);
      const [fromArrow] = await loadRows(path.join(dir, 'events.arrow'), count);
      expect(fromParquet).toEqual(fromArrow);
      expect(fromArrow!.rx).toBe(BigInt(tcpdumpCount));
      expect(fromArrow!.nft).toBe(BigInt(t.nftDropped()));
      expect(fromArrow!.closed).toBe(BigInt(N_CLOSED));

      // One tracking id per packet, from transmit in A to the drop in B.
      const rows = await loadRows(
        path.join(dir, 'events.arrow'),
        `SELECT track_id, dport, probe, dev_name, reason, packet.data AS data FROM events WHERE proto = 'udp' AND dport IN (${NFT_PORT}, ${CLOSED_PORT}) ORDER BY eid`,
      );
      const packets = new Map<string, { ids: Set<string>; probes: string[] }>();
      for (const row of rows) {
        const data = row.data as Uint8Array;
        const key = `${row.dport}/${Buffer.from(data.subarray(42, 51)).toString('latin1')}`;
        const p = packets.get(key) ?? { ids: new Set<string>(), probes: [] };
        p.ids.add(String(row.track_id));
        p.probes.push(`${row.probe}@${row.dev_name ?? ''}${row.reason ? `:${row.reason}` : ''}`);
        packets.set(key, p);
      }
      expect(packets.size).toBe(N_NFT + N_CLOSED);
      for (const [key, p] of packets) {
        expect(p.ids.size, `${key}: ${[...p.ids].join(', ')}`).toBe(1);
        expect(p.probes[0], key).toBe(`tp:net:net_dev_start_xmit@${t.vethA}`);
        expect(p.probes).toContain(`tp:net:netif_receive_skb@${t.vethB}`);
        expect(p.probes[p.probes.length - 1], key).toMatch(key.startsWith(String(NFT_PORT)) ? /^tp:skb:kfree_skb@.*:NETFILTER_DROP$/ : /^tp:skb:kfree_skb@.*:NO_SOCKET$/);
      }

      // Metadata: counts add up, nothing unaccounted; files private.
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as {
        status: string;
        host: { name: string };
        counts: { events: number; lost_total: number; attempted: number; ignored: number; lost: Record<string, unknown> };
      };
      expect(meta.status).toBe('complete');
      expect(meta.host.name).toBe(os.hostname());
      expect(meta.counts.events).toBe(Number(fromArrow!.events));
      expect(meta.counts.lost_total).toBe(0);
      expect(meta.counts.attempted).toBe(meta.counts.events + meta.counts.lost_total + meta.counts.ignored);
      expect(mode(dir)).toBe(0o700);
      for (const f of ['events.arrow', 'events.parquet', 'packets.pcapng', 'capture.json']) expect(mode(path.join(dir, f)), f).toBe(0o600);

      // pcap-ng: one interface per probe, a packet per event with packet bytes, tracking id as packet id.
      const blocks = readPcapng(fs.readFileSync(path.join(dir, 'packets.pcapng')));
      const idbs = blocks.filter((b) => b.kind === 'idb').map((b) => optionText(b.options, 2));
      expect(new Set(idbs)).toEqual(new Set(['raw_tracepoint/net:net_dev_start_xmit', 'raw_tracepoint/net:netif_receive_skb', 'raw_tracepoint/skb:kfree_skb']));
      const epbs = blocks.filter((b) => b.kind === 'epb');
      const [{ n: withPacket }] = (await loadRows(path.join(dir, 'events.arrow'), 'SELECT count(*) AS n FROM events WHERE packet IS NOT NULL')) as [{ n: bigint }];
      expect(BigInt(epbs.length)).toBe(withPacket);
      const first = epbs[0];
      expect(first && first.kind === 'epb' && first.options.some((o) => o.code === 5)).toBe(true);
      expect(first && first.kind === 'epb' && optionText(first.options, 1)).toMatch(/\[tp\] net:/);
    },
    120_000,
  );

  liveIt(
    'every attach flavour sees the same packet: tp_btf, raw_tp, classic tracepoint; stacks, skb sections, --print',
    skip,
    async () => {
      const dir = path.join(tmp, 'flavours');
      const n = 20;
      const r = await runCapture([
        '-o', dir, '--allow-system-changes', '--print', '--skb-sections', 'all',
        '-p', 'tp:net:netif_receive_skb', '-p', 'raw_tp:net:netif_rx', '-p', 'tracepoint:net:net_dev_queue', '-p', 'tp:skb:kfree_skb/stack',
        '--cmd', t.sendScript(CLOSED_PORT, n),
      ]);
      expect(r.status, r.stderr).toBe(0);
      const rows = await loadRows(
        path.join(dir, 'events.arrow'),
        `SELECT track_id, probe, symbol, probe_type, dev_name, netns_inum, reason, skb.meta.len AS meta_len, skb.data_ref.users AS users,
                kernel.stack_trace AS stack, packet.data AS data
         FROM events WHERE proto = 'udp' AND dport = ${CLOSED_PORT} ORDER BY eid`,
      );
      const byPacket = new Map<string, Record<string, unknown>[]>();
      for (const row of rows) {
        const key = Buffer.from((row.data as Uint8Array).subarray(42, 51)).toString('latin1');
        byPacket.set(key, [...(byPacket.get(key) ?? []), row]);
      }
      expect(byPacket.size).toBe(n);
      for (const [key, evs] of byPacket) {
        expect(new Set(evs.map((e) => e.probe)), key).toEqual(new Set(['tp:net:net_dev_queue', 'tp:net:netif_rx', 'tp:net:netif_receive_skb', 'tp:skb:kfree_skb']));
        expect(new Set(evs.map((e) => String(e.track_id))).size, key).toBe(1);
        for (const e of evs) {
          expect(e.probe_type).toBe('raw_tracepoint');
          expect(e.meta_len, `${key} ${String(e.probe)}`).toBeGreaterThan(0);
          expect(e.users).toBeGreaterThan(0);
          expect(e.netns_inum).toBeGreaterThan(0);
        }
        const queued = evs.find((e) => e.symbol === 'net:net_dev_queue')!;
        expect(queued.dev_name).toBe(t.vethA);
        expect(evs.find((e) => e.symbol === 'net:netif_rx')!.dev_name).toBe(t.vethB);
        const drop = evs.find((e) => e.symbol === 'skb:kfree_skb')!;
        expect(drop.reason).toBe('NO_SOCKET');
        const stack = drop.stack as string[];
        expect(stack.length).toBeGreaterThan(3);
        expect(stack.every((f) => /^[\w.]+\+0x[0-9a-f]+$/.test(f)), stack.join(' ')).toBe(true);
        expect(stack.join(' ')).toMatch(/udp/);
        expect(stack[0]).not.toMatch(/^bpf_|trace/); // from the probed code, not our program
      }
      // --print: Retis text, one block per event.
      expect(r.stdout).toMatch(/\[tp\] net:net_dev_queue #[0-9a-f]+ \(skb [0-9a-f]+\)\n {2}10\.250\.\d+\.1\.\d+ > 10\.250\.\d+\.2\.7778 .* proto UDP \(17\)/);
      expect(r.stdout).toMatch(/\[tp\] skb:kfree_skb #[0-9a-f]+ \(skb [0-9a-f]+\) drop \(reason NO_SOCKET\)\n(?: {4}\S+\n)+/);
      expect(r.stdout).toMatch(/skb \[csum .*users \d+ dataref \d+\]/);
    },
    90_000,
  );

  // Kernel functions: kprobe, else fentry (chosen by probing). Where neither works (this CI
  // kernel: no CONFIG_KPROBES, trampolines refused), the capture must refuse with the reason.
  const features = skip ? undefined : probeFeatures({ btf: Btf.vmlinux() });
  const fnSkip = skip ?? (features!.kprobe.supported || features!.fentry.supported ? undefined : `no kprobes (${features!.kprobe.reason}) and no fentry (${features!.fentry.reason})`);
  liveIt(
    'a bare function probe (kprobe, else fentry) sees the packet with the tracepoints',
    fnSkip,
    async () => {
      const dir = path.join(tmp, 'function');
      const r = await runCapture(['-o', dir, '-p', 'udp_rcv', '-p', 'tp:net:netif_receive_skb', '--cmd', t.sendScript(CLOSED_PORT, 10)]);
      expect(r.status, r.stderr).toBe(0);
      const rows = await loadRows(path.join(dir, 'events.arrow'), `SELECT probe, probe_type, track_id FROM events WHERE dport = ${CLOSED_PORT} ORDER BY eid`);
      const fn = rows.filter((x) => x.probe === 'kprobe:udp_rcv');
      expect(fn.length).toBe(10);
      expect(fn.every((x) => x.probe_type === 'kprobe')).toBe(true);
      const ids = new Set(rows.map((x) => String(x.track_id)));
      expect(ids.size).toBe(10);
    },
    60_000,
  );
  liveIt(
    'a bare function probe on a kernel without kprobes or fentry: refused with the reason (exit 1)',
    skip ?? (fnSkip === undefined ? 'this kernel has kprobes or fentry (tested above)' : undefined),
    async () => {
      const r = await runCapture(['-o', path.join(tmp, 'nofn'), '-p', 'udp_rcv', '--cmd', 'true']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/cannot probe 'udp_rcv': kprobe unavailable: .*; fentry unavailable: /);
      expect(fs.existsSync(path.join(tmp, 'nofn'))).toBe(false);
    },
    60_000,
  );

  const provider = skip ? undefined : usdtProvider();
  liveIt(
    'user probes (usdt, uprobe) carry a userspace section',
    skip ?? (provider && 'skip' in provider ? provider.skip : undefined),
    async () => {
      const bin = (provider as { path: string }).path;
      const dir = path.join(tmp, 'usdt');
      const r = await runCapture(['-o', dir, '-c', 'skb', '-p', `usdt:${bin}:retis_test:hit`, '-p', `uprobe:${bin}:retis_test_func`, '--cmd', `${bin} 4`]);
      expect(r.status, r.stderr).toBe(0);
      const rows = await loadRows(dir, 'SELECT probe, userspace.path AS path, userspace.pid AS pid, comm FROM events WHERE userspace IS NOT NULL ORDER BY eid');
      expect(rows.map((x) => x.probe)).toEqual(Array.from({ length: 4 }, () => ['uprobe:retis_test_func', 'usdt:retis_test:hit']).flat());
      expect(new Set(rows.map((x) => x.path))).toEqual(new Set([bin]));
      expect(rows.every((x) => x.comm === 'usdt-provider')).toBe(true);
    },
    60_000,
  );

  liveIt(
    "a Retis profile file runs as it is (Retis's drop.yaml: dropmon, stacks on tp:skb:kfree_skb)",
    skip,
    async () => {
      const dir = path.join(tmp, 'profile');
      const n = 30;
      const r = await runCapture(['--profile', compat('profiles/drop.yaml'), '-o', dir, '--cmd', t.sendScript(CLOSED_PORT, n)]);
      expect(r.status, r.stderr).toBe(0);
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as { collectors: string[]; probes: { probe: string }[] };
      expect([...meta.collectors].sort()).toEqual(['dev', 'ns', 'skb', 'skb-drop']);
      expect(meta.probes.map((p) => p.probe)).toContain('tp:skb:kfree_skb');
      const rows = await loadRows(dir, `SELECT count(*) AS drops, count(kernel.stack_trace) AS stacks FROM events WHERE reason = 'NO_SOCKET' AND dport = ${CLOSED_PORT}`);
      expect(rows[0]).toEqual({ drops: BigInt(n), stacks: BigInt(n) });
    },
    60_000,
  );

  liveIt(
    'kill -9 mid-capture leaves a readable Arrow stream and metadata',
    skip,
    async () => {
      const dir = path.join(tmp, 'killed');
      // Bounded traffic: at most 40 x 25 datagrams over ~2 s.
      const traffic = `for j in $(seq 40); do ${t.sendScript(CLOSED_PORT, 25)}; sleep 0.05; done`;
      const child = spawn(process.execPath, [CAPTURE, '-o', dir, '--batch-ms', '100', '--cmd', traffic], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      children.add(child);
      const arrow = path.join(dir, 'events.arrow');
      let first = 0;
      await until(() => fs.existsSync(path.join(dir, 'capture.json')) && (first ||= fs.statSync(arrow).size) > 0, 30_000, 'the capture to attach');
      await until(() => fs.statSync(arrow).size > first, 20_000, 'a batch of events on disk');
      process.kill(-child.pid!, 'SIGKILL'); // the capture and its --cmd
      await new Promise((res) => child.once('exit', res));
      const [{ n, startups }] = (await loadRows(arrow, 'SELECT count(*) AS n, count(startup) AS startups FROM events')) as [{ n: bigint; startups: bigint }];
      expect(startups).toBe(1n);
      expect(n).toBeGreaterThan(1n);
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as { status: string };
      expect(meta.status).toBe('running');
      expect(mode(arrow)).toBe(0o600);
    },
    60_000,
  );

  liveIt(
    'lifecycle: --max-events, --cmd status, SIGTERM, never overwrites unless asked',
    skip,
    async () => {
      const dir = path.join(tmp, 'life');
      const max = await runCapture(['-o', dir, '--max-events', '7', '--cmd', `${t.sendScript(CLOSED_PORT, 50)}; sleep 3`]);
      expect(max.status, max.stderr).toBe(0);
      expect(max.stderr).toMatch(/stopped \(--max-events 7 reached\): 7 events written/);
      const [{ n }] = (await loadRows(path.join(dir, 'events.arrow'), 'SELECT count(*) AS n FROM events WHERE startup IS NULL')) as [{ n: bigint }];
      expect(n).toBe(7n);

      const again = await runCapture(['-o', dir, '--cmd', 'true']);
      expect(again.status).toBe(1);
      expect(again.stderr).toMatch(/already holds a capture .*--overwrite/);
      expect(fs.existsSync(path.join(dir, 'events.arrow'))).toBe(true);

      const status = await runCapture(['-o', dir, '--overwrite', '--cmd', 'exit 3']);
      expect(status.status, status.stderr).toBe(3);

      const timed = await runCapture(['-o', path.join(tmp, 'timed'), '--duration', '1']);
      expect(timed.status, timed.stderr).toBe(0);
      expect(timed.stderr).toMatch(/stopped \(--duration 1s elapsed\)/);

      const dir2 = path.join(tmp, 'term');
      const child = spawn(process.execPath, [CAPTURE, '-o', dir2], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.add(child);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      await until(() => err.includes('attached'), 30_000, 'the capture to attach');
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
      expect(code, err).toBe(0);
      expect(err).toMatch(/stopped \(SIGTERM\)/);
      const meta = JSON.parse(fs.readFileSync(path.join(dir2, 'capture.json'), 'utf8')) as { status: string; stop: { reason: string } };
      expect(meta.status).toBe('complete');
    },
    120_000,
  );
});
