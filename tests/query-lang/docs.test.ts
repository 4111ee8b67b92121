/**
 * docs/query-language.md: its field tables are generated from the code and current, and
 * every query it shows compiles.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { updateDoc } from '../../query-lang/doc.ts';
import { EVENT_FIELDS, TRACK_FIELDS, UPCALL_FIELDS } from '../../query-lang/fields.ts';
import { prepareQuery } from '../../query-lang/run.ts';
import { REPO_ROOT } from '../util/paths.ts';

const DOC = fs.readFileSync(path.join(REPO_ROOT, 'docs/query-language.md'), 'utf8');

/** Compiles without a database: names only the data could confirm are taken as written. */
async function compiles(q: string): Promise<void> {
  await prepareQuery(null, q);
}

describe('docs/query-language.md', () => {
  it('generated blocks are up to date (npx tsx query-lang/doc.ts)', () => {
    expect(updateDoc(DOC)).toBe(DOC);
  });

  it('has the ten useful queries', () => {
    const section = DOC.slice(DOC.indexOf('## Ten useful queries'), DOC.indexOf('## Running queries'));
    expect([...section.matchAll(/```query\n/g)]).toHaveLength(10);
  });

  const blocks = [...DOC.matchAll(/```query\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
  it.each(blocks)('query block compiles: %s', async (q) => {
    await compiles(q);
  });

  const inline = [...DOC.matchAll(/`((?:events|drops|tracks|upcalls)(?: (?:where|\\\|) [^`]*)?)`/g)]
    .map((m) => m[1]!.replaceAll('\\|', '|'))
    .filter((q) => !/FILE|COND|\.\.\./.test(q));
  it.each([...new Set(inline)])('inline example compiles: %s', async (q) => {
    await compiles(q);
  });

  const examples = [
    ...EVENT_FIELDS.filter((f) => f.example).map((f) => `events where ${f.example}`),
    ...TRACK_FIELDS.filter((f) => f.example).map((f) => `tracks where ${f.example}`),
    ...UPCALL_FIELDS.filter((f) => f.example).map((f) => `upcalls where ${f.example}`),
  ];
  it.each(examples)('field example compiles: %s', async (q) => {
    await compiles(q);
  });
});
