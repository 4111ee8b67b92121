/**
 * kallsymsHas (one symbol, no set of every function: the capture's start) answers exactly what
 * kallsymsFunctions(path).has answers, on a file shaped like /proc/kallsyms and on the real one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kallsymsFunctions, kallsymsHas } from '../../bpf/features.ts';

const SAMPLE = [
  'ffffffff81000000 T _stext',
  'ffffffff81001000 t skb_free_head',
  'ffffffff81002000 D skb_data_only', // data, not text
  'ffffffff81003000 T skb_free_head_extra',
  'ffffffffc0001000 t __nft_trace_packet\t[nf_tables]',
  'ffffffffc0002000 T nf.dotted\t[mod]',
  'ffffffff81004000 T last_line_no_newline',
].join('\n');

const ROOT = process.getuid?.() === 0;
if (!ROOT) console.log('SKIP kallsymsHas on /proc/kallsyms: not root (kptr_restrict may hide the symbols in the file from other users); the sample-file cases still run');

describe('kallsymsHas', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-kallsyms-'));
  const file = path.join(dir, 'kallsyms');
  fs.writeFileSync(file, SAMPLE);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('agrees with kallsymsFunctions on a sample', () => {
    const set = kallsymsFunctions(file);
    for (const name of ['_stext', 'skb_free_head', 'skb_data_only', 'skb_free_head_extra', 'skb_free', '__nft_trace_packet', 'nf.dotted', 'nf_dotted', 'last_line_no_newline', 'last_line', 'nf_tables']) {
      expect(kallsymsHas(name, file), name).toBe(set.has(name));
    }
    expect(kallsymsHas('skb_free_head', file)).toBe(true);
    expect(kallsymsHas('skb_data_only', file)).toBe(false);
  });

  it('is false for a file it cannot read', () => {
    expect(kallsymsHas('x', path.join(dir, 'missing'))).toBe(false);
  });

  it.skipIf(!ROOT)('agrees with kallsymsFunctions on /proc/kallsyms (root)', () => {
    const set = kallsymsFunctions();
    const names = [...set].filter((_, i) => i % 4000 === 0);
    for (const name of [...names, '__nft_trace_packet', 'no_such_function_here']) expect(kallsymsHas(name), name).toBe(set.has(name));
  });
});
