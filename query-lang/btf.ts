/**
 * Just enough of BTF to read one enum: the running kernel's `enum skb_drop_reason`, so
 * that a drop reason the kernel knows but the data does not is still accepted
 * (`reason = TCP_RESET` on a capture without resets gives 0 rows, not an error).
 *
 * Layout (include/uapi/linux/btf.h): a header (magic 0xeb9f, version, flags, hdr_len,
 * type_off, type_len, str_off, str_len), then types, each a 12-byte `btf_type`
 * (name_off, info, size|type) followed by kind-specific data, then the string section.
 */
import fs from 'node:fs';

const BTF_MAGIC = 0xeb9f;

/** Bytes following the 12-byte btf_type, by kind (vlen = number of members). */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case 1: // INT
      return 4;
    case 3: // ARRAY
      return 12;
    case 4: // STRUCT
    case 5: // UNION
      return vlen * 12;
    case 6: // ENUM
      return vlen * 8;
    case 13: // FUNC_PROTO
      return vlen * 8;
    case 14: // VAR
      return 4;
    case 15: // DATASEC
      return vlen * 12;
    case 17: // DECL_TAG
      return 4;
    case 19: // ENUM64
      return vlen * 12;
    default: // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
      return 0;
  }
}

/** Names of the enumerators of enum `name` in a BTF blob, or null if absent or unreadable. */
export function btfEnumNames(buf: Uint8Array, name: string): string[] | null {
  if (buf.byteLength < 24) return null;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let le = true;
  if (dv.getUint16(0, true) !== BTF_MAGIC) {
    if (dv.getUint16(0, false) !== BTF_MAGIC) return null;
    le = false;
  }
  const hdrLen = dv.getUint32(4, le);
  const typeOff = hdrLen + dv.getUint32(8, le);
  const typeLen = dv.getUint32(12, le);
  const strOff = hdrLen + dv.getUint32(16, le);
  const strLen = dv.getUint32(20, le);
  if (typeOff + typeLen > buf.byteLength || strOff + strLen > buf.byteLength) return null;
  const decoder = new TextDecoder();
  const str = (off: number): string => {
    const start = strOff + off;
    let end = start;
    while (end < strOff + strLen && buf[end] !== 0) end++;
    return decoder.decode(buf.subarray(start, end));
  };
  const target = new TextEncoder().encode(name);
  const nameIs = (off: number): boolean => {
    const start = strOff + off;
    for (let i = 0; i < target.length; i++) if (buf[start + i] !== target[i]) return false;
    return buf[start + target.length] === 0;
  };
  let p = typeOff;
  const end = typeOff + typeLen;
  while (p + 12 <= end) {
    const nameOff = dv.getUint32(p, le);
    const info = dv.getUint32(p + 4, le);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    p += 12;
    if ((kind === 6 || kind === 19) && nameIs(nameOff)) {
      const size = kind === 6 ? 8 : 12;
      const out: string[] = [];
      for (let i = 0; i < vlen; i++) out.push(str(dv.getUint32(p + i * size, le)));
      return out;
    }
    p += extraBytes(kind, vlen);
  }
  return null;
}

let cached: string[] | null | undefined;

/**
 * Drop reasons of the running kernel as Retis names them (`SKB_DROP_REASON_NO_SOCKET`
 * → `NO_SOCKET`, `SKB_CONSUMED` → `CONSUMED`), or null when the kernel's BTF is not
 * readable. `RETIS_QUERY_BTF` names another BTF file (empty: none). Read once.
 */
export function kernelDropReasons(): string[] | null {
  if (cached !== undefined) return cached;
  const path = process.env.RETIS_QUERY_BTF ?? '/sys/kernel/btf/vmlinux';
  cached = null;
  if (path === '') return cached;
  try {
    const names = btfEnumNames(fs.readFileSync(path), 'skb_drop_reason');
    if (names) {
      cached = names
        .map((n) => n.replace(/^SKB_DROP_REASON_/, '').replace(/^SKB_/, ''))
        .filter((n) => n !== 'MAX' && !n.startsWith('SUBSYS_'));
    }
  } catch {
    cached = null;
  }
  return cached;
}
