/**
 * BPF object lifecycle over libbpf: open -> configure (autoload, attach targets, constants, map
 * sizes, shared maps) -> load -> attach -> close. A thin typed face over the addon: every native
 * failure becomes a {@link BpfError} that names the operation, the errno and what to do.
 *
 * @example
 * using obj = BpfObject.open(bpfObjectPath('selftest'));
 * obj.onlyPrograms(['selftest_raw_tp']);
 * obj.setConstants({ retis_probe_id: 1, skb_arg: 0 });
 * obj.load();
 * obj.attach('selftest_raw_tp', { type: 'raw_tp', name: 'kfree_skb' });
 */
import { Btf } from './btf.ts';
import { BpfError, check, toBpfError } from './errors.ts';
import type { Layout } from './layout.ts';
import { CLOSE_RANK, track, untrack } from './lifecycle.ts';
import { native, type LinkHandle, type NativeMapInfo, type NativeProgramInfo, type ObjectHandle } from './native.ts';

//// ATTACH TARGETS ////

/** Where to attach a program, by attach mechanism. */
export type AttachTarget =
  /** Classic tracepoint (perf event, needs tracefs to resolve the id). */
  | { type: 'tracepoint'; group: string; name: string; cookie?: bigint }
  /** Raw tracepoint by name (no tracefs needed; untyped args). */
  | { type: 'raw_tp'; name: string }
  /** BTF-typed tracepoint / fentry / fexit: the target is fixed before load (see BpfObject.setAttachTarget). */
  | { type: 'tp_btf' | 'fentry' | 'fexit' }
  | { type: 'kprobe' | 'kretprobe'; fn: string; cookie?: bigint }
  | { type: 'uprobe' | 'uretprobe'; binary: string; fn?: string; offset?: number; pid?: number; cookie?: bigint }
  | { type: 'usdt'; binary: string; provider: string; name: string; pid?: number; cookie?: bigint };

export type AttachType = AttachTarget['type'];

function describeTarget(t: AttachTarget): string {
  switch (t.type) {
    case 'tracepoint': return `${t.group}:${t.name}`;
    case 'raw_tp': return t.name;
    case 'tp_btf': case 'fentry': case 'fexit': return t.type;
    case 'kprobe': case 'kretprobe': return t.fn;
    case 'uprobe': case 'uretprobe': return `${t.binary}:${t.fn ?? `+0x${(t.offset ?? 0).toString(16)}`}`;
    case 'usdt': return `${t.binary}:${t.provider}:${t.name}`;
  }
}

//// LINK ////

/** An attached program. Destroying it detaches the probe. */
export class BpfLink {
  #handle: LinkHandle | undefined;
  constructor(handle: LinkHandle, readonly description: string, private readonly owner: BpfObject | undefined) {
    this.#handle = handle;
    track(this, CLOSE_RANK.link);
  }

  get attached(): boolean {
    return this.#handle !== undefined;
  }

  /** Detach (idempotent). */
  destroy(): void {
    const h = this.#handle;
    if (!h) return;
    this.#handle = undefined;
    untrack(this);
    this.owner?._forgetLink(this);
    check('bpf_link__destroy', this.description, () => native().linkDestroy(h));
  }

  close(): void {
    this.destroy();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

//// MAP ////

/** Per-CPU map types: values are one slot per possible CPU, each rounded up to 8 bytes. */
const PERCPU_MAP_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */, 21 /* PERCPU_CGROUP_STORAGE */]);

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

export class BpfMap {
  constructor(private readonly obj: BpfObject, readonly info: NativeMapInfo) {}

  get name(): string {
    return this.info.name;
  }

  /** The map's fd (-1 before load unless reused). */
  get fd(): number {
    return check('bpf_map__fd', this.name, () => native().mapFd(this.obj._handle(), this.name));
  }

  get isPerCpu(): boolean {
    return PERCPU_MAP_TYPES.has(this.info.type);
  }

  /** Bytes a lookup returns (per-CPU maps: possible CPUs x value size rounded up to 8). */
  get lookupSize(): number {
    return this.isPerCpu ? possibleCpus() * Math.ceil(this.info.valueSize / 8) * 8 : this.info.valueSize;
  }

  /** Before load: resize (ring buffer bytes must be a power of two multiple of the page size). */
  setMaxEntries(n: number): void {
    check('bpf_map__set_max_entries', this.name, () => native().mapSetMaxEntries(this.obj._handle(), this.name, n));
  }

  /** Before load: use an existing map (same definition) instead of creating one. */
  reuseFd(fd: number): void {
    check('bpf_map__reuse_fd', this.name, () => native().mapReuseFd(this.obj._handle(), this.name, fd));
  }

  lookup(key: Uint8Array): Uint8Array | null {
    const fd = this.fd;
    return check('bpf_map_lookup_elem', this.name, () => native().mapLookup(fd, key, this.lookupSize));
  }

  update(key: Uint8Array, value: Uint8Array, flags = BPF_ANY): void {
    const fd = this.fd;
    check('bpf_map_update_elem', this.name, () => native().mapUpdate(fd, key, value, flags));
  }

  delete(key: Uint8Array): void {
    const fd = this.fd;
    check('bpf_map_delete_elem', this.name, () => native().mapDelete(fd, key));
  }

  /** Per-CPU u64 counters of array slot `index` (one bigint per possible CPU). */
  lookupPerCpuU64(index: number): bigint[] {
    if (!this.isPerCpu || this.info.valueSize !== 8 || this.info.keySize !== 4) {
      throw new BpfError({ op: 'lookupPerCpuU64', target: this.name, kind: 'invalid', hint: 'Needs a per-CPU map with u32 keys and u64 values.' });
    }
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, index, true);
    const v = this.lookup(key);
    if (!v) return [];
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    return Array.from({ length: v.byteLength / 8 }, (_, i) => dv.getBigUint64(i * 8, true));
  }
}

let cpuCount: number | undefined;
/** Possible CPUs (what per-CPU maps are sized by; may exceed online CPUs). */
export function possibleCpus(): number {
  cpuCount ??= check('libbpf_num_possible_cpus', undefined, () => native().numPossibleCpus());
  return cpuCount;
}

//// PROGRAM ////

export class BpfProgram {
  constructor(private readonly obj: BpfObject, readonly info: NativeProgramInfo) {}

  get name(): string {
    return this.info.name;
  }

  get section(): string {
    return this.info.section;
  }

  get fd(): number {
    return check('bpf_program__fd', this.name, () => native().programFd(this.obj._handle(), this.name));
  }
}

//// OBJECT ////

export interface OpenOptions {
  /** Object name override (libbpf prefixes internal map names with it). */
  name?: string;
  /** BTF to use for CO-RE instead of /sys/kernel/btf/vmlinux. */
  btfCustomPath?: string;
  /** Layouts whose struct must match the object's BTF (catches a stale build; see layout.ts). */
  layouts?: readonly Layout[];
}

/** A constant in `.rodata` (a `const volatile` global in the BPF C). */
export type ConstantValue = number | bigint | boolean;

export class BpfObject {
  #handle: ObjectHandle | undefined;
  #loaded = false;
  #btf: Btf | undefined | null = null;
  readonly #links = new Set<BpfLink>();
  readonly path: string;

  private constructor(handle: ObjectHandle, path: string) {
    this.#handle = handle;
    this.path = path;
    track(this, CLOSE_RANK.object);
  }

  /** Open (parse) an object file. Nothing reaches the kernel until {@link load}. */
  static open(path: string, opts: OpenOptions = {}): BpfObject {
    const openOpts: { name?: string; btfCustomPath?: string } = {};
    if (opts.name !== undefined) openOpts.name = opts.name;
    if (opts.btfCustomPath !== undefined) openOpts.btfCustomPath = opts.btfCustomPath;
    const h = check('bpf_object__open_file', path, () => native().objectOpen(path, openOpts));
    const obj = new BpfObject(h, path);
    try {
      for (const l of opts.layouts ?? []) obj.verifyLayout(l);
    } catch (e) {
      obj.close();
      throw e;
    }
    return obj;
  }

  /** @internal */
  _handle(): ObjectHandle {
    if (!this.#handle) throw new BpfError({ op: 'BpfObject', target: this.path, kind: 'closed', hint: 'The object was closed.' });
    return this.#handle;
  }

  /** @internal */
  _forgetLink(l: BpfLink): void {
    this.#links.delete(l);
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  programs(): BpfProgram[] {
    return check('objectPrograms', this.path, () => native().objectPrograms(this._handle())).map((i) => new BpfProgram(this, i));
  }

  maps(): BpfMap[] {
    return check('objectMaps', this.path, () => native().objectMaps(this._handle())).map((i) => new BpfMap(this, i));
  }

  program(name: string): BpfProgram {
    const p = this.programs().find((x) => x.name === name);
    if (!p) throw new BpfError({ op: 'program', target: name, kind: 'not-found', hint: `No program '${name}' in ${this.path} (has: ${this.programs().map((x) => x.name).join(', ')}).` });
    return p;
  }

  /** A map by name; internal maps by section (`.rodata`, `.bss`). */
  map(name: string): BpfMap {
    const maps = this.maps();
    const m = maps.find((x) => x.name === name) ?? (name.startsWith('.') ? maps.find((x) => x.name.endsWith(name)) : undefined);
    if (!m) throw new BpfError({ op: 'map', target: name, kind: 'not-found', hint: `No map '${name}' in ${this.path} (has: ${maps.map((x) => x.name).join(', ')}).` });
    return m;
  }

  /** The object's own BTF (its structs, `.rodata` variables), parsed in TS. */
  btf(): Btf | undefined {
    if (this.#btf === null) {
      const raw = check('bpf_object__btf', this.path, () => native().objectBtf(this._handle()));
      this.#btf = raw ? Btf.parse(raw) : undefined;
    }
    return this.#btf;
  }

  setAutoload(program: string, on: boolean): void {
    check('bpf_program__set_autoload', program, () => native().programSetAutoload(this._handle(), program, on));
  }

  /** Load only these programs: the others (other attach types) never reach the verifier. */
  onlyPrograms(names: readonly string[]): void {
    const want = new Set(names);
    const all = this.programs();
    for (const n of want) if (!all.some((p) => p.name === n)) this.program(n); // throws with the list
    for (const p of all) this.setAutoload(p.name, want.has(p.name));
  }

  /** Before load: BTF target of a tp_btf/fentry/fexit program (tracepoint or function name). */
  setAttachTarget(program: string, target: string): void {
    check('bpf_program__set_attach_target', target, () => native().programSetAttachTarget(this._handle(), program, target));
  }

  /**
   * Before load: set `const volatile` globals by name. Offsets and sizes come from the object's
   * BTF (`.rodata` DATASEC), so there is no second copy of the C declarations here.
   */
  setConstants(values: Readonly<Record<string, ConstantValue>>, section = '.rodata'): void {
    if (Object.keys(values).length === 0) return;
    const btf = this.btf();
    const sec = btf?.findType(section, 'datasec');
    if (!btf || !sec) {
      throw new BpfError({ op: 'setConstants', target: this.path, kind: 'invalid', hint: `The object has no ${section} section in its BTF (no const volatile globals, or built without -g).` });
    }
    const map = this.map(section);
    const init = check('bpf_map__initial_value', section, () => native().mapInitialValue(this._handle(), map.name));
    if (!init) throw new BpfError({ op: 'bpf_map__initial_value', target: section, kind: 'invalid', hint: 'The map has no initial value.' });
    const data = new Uint8Array(init);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const vars = new Map<string, { offset: number; size: number; signed: boolean }>();
    for (const v of sec.vars) {
      const t = btf.type(v.type);
      if (t.kind !== 'var') continue;
      const r = btf.resolve(t.type);
      vars.set(t.name, { offset: v.offset, size: v.size, signed: (r.kind === 'int' && r.signed) || ((r.kind === 'enum' || r.kind === 'enum64') && r.signed) });
    }
    for (const [name, value] of Object.entries(values)) {
      const v = vars.get(name);
      if (!v) {
        throw new BpfError({ op: 'setConstants', target: name, kind: 'not-found', hint: `No const volatile '${name}' in ${section} of ${this.path} (has: ${[...vars.keys()].join(', ')}).` });
      }
      const n = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
      const bits = BigInt(v.size * 8);
      const fits = v.signed ? n >= -(1n << (bits - 1n)) && n < 1n << (bits - 1n) : n >= 0n && n < 1n << bits;
      if (!fits) throw new BpfError({ op: 'setConstants', target: name, kind: 'invalid', hint: `${value} does not fit in ${v.signed ? 's' : 'u'}${v.size * 8}.` });
      const u = BigInt.asUintN(v.size * 8, n);
      switch (v.size) {
        case 1: dv.setUint8(v.offset, Number(u)); break;
        case 2: dv.setUint16(v.offset, Number(u), true); break;
        case 4: dv.setUint32(v.offset, Number(u), true); break;
        case 8: dv.setBigUint64(v.offset, u, true); break;
        default: throw new BpfError({ op: 'setConstants', target: name, kind: 'invalid', hint: `Only 1/2/4/8-byte scalars can be set (size ${v.size}).` });
      }
    }
    check('bpf_map__set_initial_value', section, () => native().mapSetInitialValue(this._handle(), map.name, data));
  }

  /**
   * Compare a layout with the struct of the same name in the object's BTF. Absent struct: nothing
   * to check (the object does not use it). Mismatch: the object was built from another version of
   * the .layout.ts file.
   */
  verifyLayout(layout: Layout): void {
    const btf = this.btf();
    const st = btf?.findType(layout.name, 'struct');
    if (!btf || !st) return;
    const stale = (what: string): never => {
      throw new BpfError({ op: 'verifyLayout', target: `struct ${layout.name}`, kind: 'stale-build', detail: what, hint: `${this.path} was built from another version of this layout: run npm run build:bpf.` });
    };
    if (st.size !== layout.size) stale(`size ${st.size} in the object, ${layout.size} in the layout`);
    const members = new Map(st.members.map((m) => [m.name, m]));
    for (const f of layout.fields) {
      const m = members.get(f.name);
      if (!m) stale(`field '${f.name}' missing from the object`);
      else if (m.bitOffset !== f.offset * 8) stale(`field '${f.name}' at byte ${m.bitOffset / 8} in the object, ${f.offset} in the layout`);
      else if (btf.sizeof(m.type) !== f.size) stale(`field '${f.name}' is ${btf.sizeof(m.type)} bytes in the object, ${f.size} in the layout`);
    }
  }

  /**
   * Make {@link patchProgram} possible for objects opened from now on (process-wide: libbpf hands
   * out final instructions only to section handlers registered before bpf_object__open).
   */
  static enablePatching(): void {
    check('libbpf_register_prog_handler', undefined, () => native().insnPatchInit());
  }

  /**
   * Before load: replace a placeholder region (`call magic` + nops, see
   * bpf/include/retis/filter.bpf.h) of a program's final instructions with `insns` (as long).
   * Needs {@link enablePatching} before this object was opened.
   */
  patchProgram(program: string, magic: number, insns: Uint8Array): void {
    check('programSetPatch', program, () => native().programSetPatch(this._handle(), program, magic, insns));
  }

  /** BPF_PROG_TEST_RUN of a loaded program (tests). */
  testRun(program: string, ctxIn: Uint8Array | null = null): { retval: number; durationNs: number } {
    return check('bpf_prog_test_run_opts', program, () => native().programTestRun(this._handle(), program, ctxIn));
  }

  /** Create maps, run CO-RE relocations, verify and load every autoload program. */
  load(): void {
    check('bpf_object__load', this.path.replace(/^.*\//, ''), () => native().objectLoad(this._handle()));
    this.#loaded = true;
  }

  /**
   * load() on a worker thread: several objects verify in parallel (the verifier is most of a
   * capture's start time). Do not use or close the object before the promise settles.
   */
  async loadAsync(): Promise<void> {
    const target = this.path.replace(/^.*\//, '');
    const h = this._handle();
    let p: Promise<void>;
    try {
      p = native().objectLoadAsync(h);
    } catch (e) {
      throw toBpfError(e, 'bpf_object__load', target);
    }
    try {
      await p;
    } catch (e) {
      throw toBpfError(e, 'bpf_object__load', target);
    }
    this.#loaded = true;
  }

  /** Attach a loaded program. The link is owned by this object (closed with it). */
  attach(program: string, target: AttachTarget): BpfLink {
    const h = this._handle();
    const what = `${program} -> ${target.type}:${describeTarget(target)}`;
    if (!this.#loaded) throw new BpfError({ op: 'attach', target: what, kind: 'invalid', hint: 'Load the object before attaching.' });
    const n = native();
    let link: LinkHandle;
    const tgt = describeTarget(target);
    switch (target.type) {
      case 'tracepoint':
        link = check('bpf_program__attach_tracepoint', tgt, () => n.attachTracepoint(h, program, target.group, target.name, target.cookie ?? 0n));
        break;
      case 'raw_tp':
        link = check('bpf_program__attach_raw_tracepoint', tgt, () => n.attachRawTracepoint(h, program, target.name));
        break;
      case 'tp_btf': case 'fentry': case 'fexit':
        link = check('bpf_program__attach_trace', program, () => n.attachTrace(h, program));
        break;
      case 'kprobe': case 'kretprobe':
        link = check(`bpf_program__attach_${target.type}`, tgt, () => n.attachKprobe(h, program, target.fn, target.type === 'kretprobe', target.cookie ?? 0n));
        break;
      case 'uprobe': case 'uretprobe':
        link = check(`bpf_program__attach_${target.type}`, tgt, () =>
          n.attachUprobe(h, program, target.type === 'uretprobe', target.pid ?? -1, target.binary, target.fn ?? null, target.offset ?? 0, target.cookie ?? 0n));
        break;
      case 'usdt':
        link = check('bpf_program__attach_usdt', tgt, () => n.attachUsdt(h, program, target.pid ?? -1, target.binary, target.provider, target.name, target.cookie ?? 0n));
        break;
    }
    const l = new BpfLink(link, what, this);
    this.#links.add(l);
    return l;
  }

  get links(): readonly BpfLink[] {
    return [...this.#links];
  }

  /** Detach every link of this object (maps and programs stay: a reader can still drain). */
  detachAll(): void {
    const errors: unknown[] = [];
    for (const l of [...this.#links]) {
      try {
        l.destroy();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw errors[0];
  }

  /** Detach and free everything (idempotent). */
  close(): void {
    const h = this.#handle;
    if (!h) return;
    try {
      this.detachAll();
    } finally {
      this.#handle = undefined;
      untrack(this);
      check('bpf_object__close', this.path, () => native().objectClose(h));
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
