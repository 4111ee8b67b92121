import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { renderEventModelDoc } from '../../analyze/model/doc.ts';
import { REPO_ROOT } from '../util/paths.ts';

it('docs/event-model.md is generated from the schema and up to date (npm run docs)', () => {
  expect(fs.readFileSync(path.join(REPO_ROOT, 'docs/event-model.md'), 'utf8')).toBe(renderEventModelDoc());
});
