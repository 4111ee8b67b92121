/**
 * -f/--filter-packet and -m/--filter-meta for retis-capture: compiled once, before any probe is
 * loaded, into code for the placeholders of capture.bpf.c (bpf/include/retis/filter.bpf.h).
 *
 * Errors: an expression libpcap refuses, or a meta filter that does not parse, is a usage error
 * (exit 2) carrying libpcap's (or the parser's) message; a meta filter naming a struct or member
 * the running kernel does not have is a capture error (exit 1): it depends on the machine.
 */
import type { Btf } from '../bpf/btf.ts';
import { matchAll } from '../bpf/filters/ebpf.ts';
import { FILTER_L2_MAGIC, FILTER_L3_MAGIC, FILTER_META_MAGIC } from '../bpf/filters/layout.ts';
import { compileMetaFilter, MetaFilterResolveError, MetaFilterSyntaxError, parseMetaFilter, type MetaExpr } from '../bpf/filters/meta.ts';
import { compilePacketFilter, PacketFilterError, type CompiledPacketFilter } from '../bpf/filters/packet.ts';
import { UsageError } from './options.ts';
import type { ProbeFilters } from './probes.ts';

/** The meta filter does not fit the running kernel (exit 1; session.ts reports it). */
export class FilterResolveError extends Error {
  override name = 'FilterResolveError';
}

export interface CaptureFilters extends ProbeFilters {
  packetFilter: CompiledPacketFilter | undefined;
  /** For the log and capture.json. */
  summary: string[];
}

/** Before anything touches the system: a malformed -f/-m is a usage error (exit 2). */
export function checkFilterSyntax(packet: string | undefined, meta: string | undefined): void {
  if (packet !== undefined) {
    try {
      compilePacketFilter(packet);
    } catch (e) {
      if (e instanceof PacketFilterError) throw new UsageError(`-f: invalid pcap filter '${packet}': ${e.pcapError}`);
      throw e;
    }
  }
  if (meta !== undefined) {
    try {
      parseMetaFilter(meta);
    } catch (e) {
      if (e instanceof MetaFilterSyntaxError) throw new UsageError(`-m: ${e.message}`);
      throw e;
    }
  }
}

/** Parse and compile (no kernel access but the BTF): throws UsageError or FilterResolveError. */
export function compileCaptureFilters(packet: string | undefined, meta: string | undefined, btf: () => Btf): CaptureFilters | undefined {
  if (packet === undefined && meta === undefined) return undefined;
  const summary: string[] = [];
  let pf: CompiledPacketFilter | undefined;
  if (packet !== undefined) {
    try {
      pf = compilePacketFilter(packet);
    } catch (e) {
      if (e instanceof PacketFilterError) throw new UsageError(`-f: invalid pcap filter '${packet}': ${e.pcapError}`);
      throw e;
    }
    summary.push(pf.l3.fallback ? 'L2 packet filter loaded (L3: the L2 program over a fake Ethernet header)' : 'L2+L3 packet filter(s) loaded');
  }
  let metaCode: Uint8Array | undefined;
  if (meta !== undefined) {
    let ast: MetaExpr;
    try {
      ast = parseMetaFilter(meta);
    } catch (e) {
      if (e instanceof MetaFilterSyntaxError) throw new UsageError(`-m: ${e.message}`);
      throw e;
    }
    try {
      metaCode = compileMetaFilter(ast, btf());
    } catch (e) {
      if (e instanceof MetaFilterResolveError) throw new FilterResolveError(`-m '${meta}': ${e.message}`);
      throw e;
    }
    summary.push('meta filter loaded');
  }
  return {
    packet: pf !== undefined,
    meta: metaCode !== undefined,
    packetFilter: pf,
    summary,
    // Every placeholder gets code: an unused one matches everything (and is never called).
    patches: [
      { magic: FILTER_L2_MAGIC, insns: pf?.l2.ebpf ?? matchAll() },
      { magic: FILTER_L3_MAGIC, insns: pf?.l3.ebpf ?? matchAll() },
      { magic: FILTER_META_MAGIC, insns: metaCode ?? matchAll() },
    ],
  };
}
