/**
 * A live framebuffer: with the kernel's console drawing into /dev/fb0 (profile
 * key console), the run says in one line that the region changes on its own
 * and skips the content cases with that reason instead of failing them.
 *
 * The change is fbcon's cursor blink, a timer in the guest: on a host whose
 * cores another guest keeps busy, TCG can delay it past the run's reads, so
 * this file runs alone (CLI_ALONE in vitest.config.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { REPO_ROOT } from '../../tools/paths.js';
import { runCli } from './run-cli.js';

const REAL = path.join(REPO_ROOT, 'test', 'profiles', 'real');
/** A whole profile run boots its own guest; under TCG on a busy 2-core host that takes minutes. */
const RUN_TIMEOUT_MS = 900_000;

describe('a live framebuffer: fb0-bochs with fbcon bound to it (console: true)', () => {
  it('one line says the region changed on its own; every content case skips with that reason; the run passes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-live-'));
    try {
      const profile = path.join(dir, 'fb0-console.json');
      const bochs = JSON.parse(readFileSync(path.join(REAL, 'fb0-bochs.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(profile, JSON.stringify({ ...bochs, name: 'fb0 with fbcon', console: true }));
      const result = await runCli('test', '--profile', profile);
      const output = `${result.stdout.slice(-6000)}\n${result.stderr.slice(-2000)}`;
      expect(result.code, output).toBe(ExitCode.PASSED);
      const said = result.stderr.split('\n').filter((line) => line.includes('changed on its own'));
      expect(said, output).toHaveLength(1);
      expect(said[0]).toMatch(/^mmapkit: fb0 with fbcon: the region changed on its own between two reads \d+\.\d s apart \([1-9]\d* bytes differ, first at offset \d+\): content cases are skipped$/);
      const reason = /the region changed on its own between two reads [^:]*: this case compares content$/;
      const skipped = result.stdout.split('\n').filter((line) => line.startsWith('[SKIPPED]') && reason.test(line));
      // The initial-content case, a write seen through a second mapping, and a fork seeing content among them.
      for (const title of ['a whole-device map reads zero right after load', 'a write through one mapping is seen through a second mapping', "a forked child sees the parent's shared mapping"]) {
        expect(skipped.some((line) => line.includes(title)), `${title}\n${output}`).toBe(true);
      }
      expect(result.stdout).toMatch(/^[1-9]\d* passed, 0 failed, [1-9]\d* skipped, 0 crashed$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, RUN_TIMEOUT_MS);
});
