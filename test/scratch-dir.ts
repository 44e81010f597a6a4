import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * A temporary directory for one test file, made before its first test and removed after its last.
 * Not made at import: `vitest list` imports every file and runs no hook, and would leave one behind.
 */
export function scratchDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), prefix));
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (dir === undefined) throw new Error(`${prefix}: the scratch directory is made in beforeAll; it was asked for before`);
    return dir;
  };
}
