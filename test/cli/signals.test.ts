/**
 * Stopping a run from outside, as a terminal, CI or a supervisor does: the
 * signal goes to the npx process only (not its process group), and within
 * 5 s npx has exited with 128 + the signal's number, and nothing of the run
 * is left: no node below npx, no QEMU, no temp directory (the agent socket's;
 * for `mmapkit test`, nothing under its TMPDIR: relay sockets, vitest's module
 * copies). Each case boots a guest, the last two.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { descendantsOf, signalExitCode } from '../../tools/cli/interrupts.js';
import { REPO_ROOT } from '../../tools/paths.js';

const DEADLINE_MS = 5000;

const cmdline = (pid: number): string[] => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
};

/** In /proc and not a zombie (a zombie holds nothing: no memory, no files, no guest). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return done();
}

/** `npx ARGS...` in the checkout, its stderr collected, and how it ended once it did. */
function startNpx(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const npx = spawn('npx', args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const run = { npx, stderr: '', closed: new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npx.on('close', (code, end) => resolve({ code, signal: end }))) };
  npx.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  return run;
}

/** A failed case must not leave its guests running for the next one. */
function killAll(npx: ChildProcess, below: number[]): void {
  for (const pid of new Set([npx.pid!, ...descendantsOf(npx.pid!), ...below])) {
    try {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

describe('npx mmapkit vm run -- sleep 100, signalled', () => {
  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('%s to npx stops the guest and leaves nothing behind within 5 s', async (signal) => {
    const run = startNpx(['mmapkit', 'vm', 'run', '--', 'sleep', '100']);
    const { npx, closed } = run;
    let below: number[] = [];
    try {
      expect(await until(() => /mmapkit: (booted|restored) /.test(run.stderr), 120_000), run.stderr).toBe(true);

      // What the run consists of, found from npx down: our node, QEMU and the temp directory of QEMU's agent socket.
      below = descendantsOf(npx.pid!);
      const node = below.find((pid) => cmdline(pid).some((arg) => arg.endsWith(path.join('bin', 'mmapkit.js')) || arg.endsWith('/.bin/mmapkit')));
      const qemu = below.find((pid) => cmdline(pid)[0]?.includes('qemu-system') === true);
      const socket = qemu !== undefined ? /path=([^,]*\/agent\.sock)/.exec(cmdline(qemu).join(' '))?.[1] : undefined;
      expect(node, `node below npx: ${below.map((pid) => cmdline(pid).join(' ')).join('\n')}`).toBeDefined();
      expect(qemu).toBeDefined();
      expect(socket).toBeDefined();
      const tempDir = path.dirname(socket!);
      expect(existsSync(socket!)).toBe(true);

      const sent = Date.now();
      npx.kill(signal);
      const end = await closed;
      const stopped = await until(() => ![...below].some(alive) && !existsSync(tempDir), DEADLINE_MS - (Date.now() - sent));
      const left = below.filter(alive).map((pid) => cmdline(pid).join(' '));
      expect({ stopped, left, tempDirLeft: existsSync(tempDir) }).toEqual({ stopped: true, left: [], tempDirLeft: false });
      expect(Date.now() - sent).toBeLessThan(DEADLINE_MS);
      // npm passes on the code our process exits with, or dies of the same signal itself.
      expect(end.code ?? signalExitCode(end.signal)).toBe(signalExitCode(signal));
    } finally {
      killAll(npx, below);
    }
  });
});

/** What the run left in `dir`. */
const leftIn = (dir: string): string[] => readdirSync(dir);

describe('npx mmapkit test in two guests, signalled', () => {
  it('SIGINT to npx stops both guests and vitest, and leaves nothing under its TMPDIR within 5 s', async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-signals-'));
    const env = { ...process.env, TMPDIR: tmp, MMAPKIT_TEST_GUESTS: '2' };
    const run = startNpx(['mmapkit', 'test'], env);
    const { npx, closed } = run;
    let below: number[] = [];
    try {
      expect(await until(() => (run.stderr.match(/mmapkit: (booted|restored) /g) ?? []).length === 2, 120_000), run.stderr).toBe(true);
      below = descendantsOf(npx.pid!);
      expect(below.filter((pid) => cmdline(pid)[0]?.includes('qemu-system') === true)).toHaveLength(2);
      expect(leftIn(tmp), 'the relay sockets').not.toEqual([]);

      const sent = Date.now();
      npx.kill('SIGINT');
      const end = await closed;
      const stopped = await until(() => ![...below].some(alive) && leftIn(tmp).length === 0, DEADLINE_MS - (Date.now() - sent));
      const left = below.filter(alive).map((pid) => cmdline(pid).join(' '));
      expect({ stopped, left, tmpLeft: leftIn(tmp) }).toEqual({ stopped: true, left: [], tmpLeft: [] });
      expect(end.code ?? signalExitCode(end.signal)).toBe(signalExitCode('SIGINT'));
    } finally {
      killAll(npx, below);
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
