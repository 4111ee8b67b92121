/**
 * retis-ts BPF layer: a thin typed face over libbpf (N-API addon) plus pure-TS helpers.
 *
 * Works without the native build: btf, layout, probe-spec parsing, env checks. Needs it (and
 * says so with the fix when missing): BpfObject, RingBufReader, ProbeSet, feature load probes.
 */
export { Btf, BtfError, dropReasonNames } from './btf.ts';
export type { BtfKind, BtfType, BtfTypeOf, BtfMember, BtfEnumMember, BtfParam, MemberAccess } from './btf.ts';

export { defineLayout, defineEnum, isLayout, isEnumDef, generateCHeader, layoutToC, enumToC } from './layout.ts';
export type { Layout, EnumDef, FieldSpec, FieldType, FieldInfo, FieldValue, Decoded, FieldReader, ScalarType } from './layout.ts';

export { BpfError, errnoName, errnoNumber, verifierLogTail, toBpfError } from './errors.ts';
export type { BpfErrorKind } from './errors.ts';

export { native, nativeStatus, bpfObjectPath, addonPath, NativeMissingError, NATIVE_HINT, BUILD_DIR } from './native.ts';

export { BpfObject, BpfProgram, BpfMap, BpfLink, possibleCpus, BPF_ANY, BPF_NOEXIST, BPF_EXIST } from './object.ts';
export type { AttachTarget, OpenOptions, ConstantValue } from './object.ts';

export { RingBufReader, RingBatch, readLosses, RECORD_HEADER_BYTES } from './ringbuf.ts';
export type { RingBufOptions, RingBufStats, LossReport } from './ringbuf.ts';

export { ProbeSet } from './probe-set.ts';
export type { ProbeSetOptions, ProbePrograms, LoadedProbe, SkippedProbe } from './probe-set.ts';

export {
  parseProbeSpec, formatProbeSpec, resolveProbes, listTracefsEvents, resolveBinary, globToRegExp, ProbeSpecError, ProbeResolveError,
} from './probe-spec.ts';
export type { ProbeSpec, ProbeKind, ResolvedProbe, ResolveContext, AttachType } from './probe-spec.ts';

export { probeFeatures, kallsymsFunctions, hasPmu } from './features.ts';
export type { Feature, KernelFeatures } from './features.ts';

export { checkEnvironment, assertEnvironment, formatEnvReport, formatEnvProblems, findTracefs, readMounts, effectiveCaps, EnvError } from './env.ts';
export type { EnvCheck, EnvCheckId, EnvOptions, EnvReport } from './env.ts';

export { closeAll, openResourceCount } from './lifecycle.ts';
