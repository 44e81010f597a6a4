/**
 * Two commands in one checkout that both find the module stale: one builds
 * it under the checkout's build lock, the other says it waits and then finds
 * the module built. Both succeed; neither sees the other's half-written
 * objects (before the lock: `objtool: Can't open .../mmapkit-main.o`, exit 3).
 */
import { utimesSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/paths.js';
import { runCli } from './run-cli.js';

describe('two builds at once', () => {
  it('after a kmod source changed, both exit 0: one builds the module, the other waits for it', async () => {
    const now = new Date();
    utimesSync(path.join(REPO_ROOT, 'kmod', 'mmapkit-main.c'), now, now);
    const [first, second] = await Promise.all([runCli('build'), runCli('build')]);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    const built = [first, second].filter((run) => /build: module-\S+ done/.test(run.stderr));
    expect(built).toHaveLength(1);
    // The other waited for it (or, started late, found it built already).
    const other = first === built[0] ? second : first;
    expect(other.stderr).toMatch(/build: waiting for another mmapkit build in this checkout|build: nothing to do/);
  });
});
