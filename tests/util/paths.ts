/**
 * Where tests find things. shared/ sits beside the repository (../shared), in CI as on a
 * developer's machine; RETIS_COMPAT_DIR overrides it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const COMPAT_DIR = process.env.RETIS_COMPAT_DIR ?? path.resolve(REPO_ROOT, '../shared/compat/retis');
export const compat = (name: string): string => path.join(COMPAT_DIR, name);
export const FIXTURES = path.join(REPO_ROOT, 'fixtures');
