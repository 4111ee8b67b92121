/**
 * Drop reason names of the running kernel, as Retis writes them in `skb-drop`:
 * - core reasons (subsystem 0): `enum skb_drop_reason` minus `SKB_DROP_REASON_` (`NO_SOCKET`);
 * - subsystem reasons: the raw value's high 16 bits name the subsystem (`enum
 *   skb_drop_reason_subsys`, lower-cased: `openvswitch`), the low bits index that subsystem's own
 *   enum, whose member name is kept whole (`OVS_DROP_LAST_ACTION`). Those enums live in module
 *   BTF (openvswitch, mac80211), looked up when a value is first seen.
 *
 * The enums are not UAPI and move between kernels: names come from the BTF of the kernel the
 * capture runs on, never from a table. Unknown values are written as their number.
 */
import { Btf } from '../bpf/btf.ts';

/** SKB_DROP_REASON_SUBSYS_SHIFT */
const SUBSYS_SHIFT = 16;

/** Enum holding each subsystem's reasons, and the module whose BTF has it (Retis's mapping). */
const SUBSYS_ENUMS: Record<string, { enum: string; modules: string[] }> = {
  openvswitch: { enum: 'ovs_drop_reason', modules: ['openvswitch'] },
  mac80211_unusable: { enum: 'mac80211_drop_reason', modules: ['mac80211'] },
  mac80211_monitor: { enum: 'mac80211_drop_reason', modules: ['mac80211'] },
};

export interface DropReasonName {
  /** Lower-case subsystem name, undefined for core reasons. */
  subsys: string | undefined;
  reason: string;
}

export class DropReasons {
  private readonly core: Map<number, string>;
  private readonly subsystems = new Map<number, string>();
  private readonly cache = new Map<number, DropReasonName>();
  private readonly moduleEnums = new Map<string, Map<number, string> | null>();

  /**
   * Names are copied out of `btf` (the capture then lets the parsed BTF go); subsystem enums are
   * looked up later, in the kernel's and the modules' BTF, when such a reason is first seen.
   */
  constructor(btf: Btf) {
    let core: Map<number, string>;
    try {
      core = btf.dropReasons();
    } catch {
      // Kernels before 5.17 have no drop reasons: skb:kfree_skb has no reason argument there.
      core = new Map();
    }
    this.core = core;
    const subsys = btf.findType('skb_drop_reason_subsys', 'enum');
    for (const m of subsys?.values ?? []) {
      const name = m.name.replace(/^SKB_DROP_REASON_SUBSYS_/, '');
      if (name === 'NUM' || name === 'CORE') continue;
      this.subsystems.set(Number(m.value), name.toLowerCase());
    }
  }

  /** Name of a raw reason value (cached: called per drop event). */
  name(raw: number): DropReasonName {
    let n = this.cache.get(raw);
    if (n === undefined) {
      n = this.resolve(raw);
      this.cache.set(raw, n);
    }
    return n;
  }

  private resolve(raw: number): DropReasonName {
    const subsysId = raw >>> SUBSYS_SHIFT;
    if (subsysId === 0) return { subsys: undefined, reason: this.core.get(raw) ?? String(raw) };
    const subsys = this.subsystems.get(subsysId) ?? `subsys${subsysId}`;
    const names = this.subsysEnum(subsys);
    return { subsys, reason: names?.get(raw) ?? String(raw & 0xffff) };
  }

  private subsysEnum(subsys: string): Map<number, string> | null {
    const spec = SUBSYS_ENUMS[subsys];
    if (!spec) return null;
    const key = spec.enum;
    if (this.moduleEnums.has(key)) return this.moduleEnums.get(key)!;
    let found: Map<number, string> | null = null;
    for (const src of [() => Btf.vmlinux(), ...spec.modules.map((m) => () => Btf.module(m))]) {
      let b: Btf | undefined;
      try {
        b = src();
      } catch {
        continue; // unreadable module BTF: the number is written instead
      }
      const t = b?.findType(key, 'enum');
      if (t) {
        found = new Map(t.values.map((m) => [Number(m.value), m.name]));
        break;
      }
    }
    this.moduleEnums.set(key, found);
    return found;
  }
}
