/**
 * `retis-query sort FILE | head -1`: the reader closing the pipe ends the command quietly
 * (exit 0, nothing on stderr), as with other Unix tools, not with an EPIPE stack trace.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('retis-query output into a closed pipe', () => {
  it('exits 0 without a stack trace when the reader stops early', () => {
    const bin = path.join(ROOT, 'bin', 'retis-query.js');
    const fixture = path.join(ROOT, 'fixtures', 'synthetic', 'ovs-small.json');
    // bash: PIPESTATUS gives retis-query's own status behind `head -1`.
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${bin}" sort "${fixture}" | head -1 >/dev/null; echo "status \${PIPESTATUS[0]}" >&2`], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).not.toMatch(/EPIPE|at .*\(node:/);
    expect(r.stderr).toMatch(/status 0/);
  }, 70_000);
});
