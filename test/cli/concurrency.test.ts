/**
 * Two commands in one checkout that both find the module stale: one builds
 * it under the checkout's build lock, the other says it waits and then finds
 * the module built. Both succeed; neither sees the other's half-written
 * objects (before the lock: `objtool: Can't open .../mmapkit-main.o`, exit 3).
 * And `mmapkit test`, which builds the module while the guest boots, on a
 * checkout whose module was never built, as `make run` finds a fresh clone.
 * Both change the checkout's module, so this file runs alone (vitest.config.ts).
 */
import { existsSync, rmSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { discoverKernel } from '../../tools/kernel.js';
import { REPO_ROOT, moduleObject } from '../../tools/paths.js';
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

describe('the module built while the guest boots', () => {
  it('a quick run on a checkout whose module was never built builds it, checks it and passes', async () => {
    const ko = moduleObject(discoverKernel({}).version);
    rmSync(ko, { force: true });
    const run = await runCli('test', '--quick');
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    expect(run.stderr).toMatch(/build: module-\S+ done/);
    expect(existsSync(ko)).toBe(true);
    expect(run.stdout).toMatch(/^[1-9]\d* passed, 0 failed, 0 skipped, 0 crashed$/m);
  }, 600_000);
});
