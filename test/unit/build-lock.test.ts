// The checkout's build lock (tools/builder/lock.ts): commands wait for one
// another, say so once, and a holder that dies releases the lock by itself.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withLock } from '../../tools/builder/lock.js';
import { scratchDir } from '../scratch-dir.js';

const scratch = scratchDir('mmapkit-lock-test-');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Another process holding `file` with flock(1), as a second mmapkit would; resolves once it holds it. */
async function outsideHolder(file: string): Promise<ChildProcess> {
  // One process that holds the lock on its fd 9: sh, which becomes sleep.
  const holder = spawn('sh', ['-c', 'exec 9>>"$1"; flock 9; echo held; exec sleep 60', 'sh', file], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
  return holder;
}

describe('withLock', () => {
  it('runs one holder at a time; the second waits, says so once, then runs', async () => {
    const file = path.join(scratch(), 'serial.lock');
    const events: string[] = [];
    const logs: string[] = [];
    let releaseFirst!: () => void;
    const first = withLock(file, (line) => logs.push(`first: ${line}`), async () => {
      events.push('first start');
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      events.push('first end');
    });
    while (events.length === 0) await sleep(10);
    const second = withLock(file, (line) => logs.push(`second: ${line}`), async () => {
      events.push('second start');
    });
    await sleep(500);
    expect(events).toEqual(['first start']);
    releaseFirst();
    await Promise.all([first, second]);
    expect(events).toEqual(['first start', 'first end', 'second start']);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^second: build: waiting for another mmapkit build in this checkout/);
  });

  it('does not wait, nor say anything, when the lock is free', async () => {
    const logs: string[] = [];
    expect(await withLock(path.join(scratch(), 'free.lock'), (line) => logs.push(line), async () => 42)).toBe(42);
    expect(logs).toEqual([]);
  });

  it('is released when the holding process dies, even by SIGKILL', async () => {
    const file = path.join(scratch(), 'killed.lock');
    const holder = await outsideHolder(file);
    const logs: string[] = [];
    let ran = false;
    const waiting = withLock(file, (line) => logs.push(line), async () => {
      ran = true;
    });
    await sleep(300);
    expect(ran).toBe(false);
    expect(logs).toHaveLength(1);
    holder.kill('SIGKILL');
    await waiting;
    expect(ran).toBe(true);
  });

  it('is released when the work fails, and the failure passes through', async () => {
    const file = path.join(scratch(), 'failing.lock');
    await expect(withLock(file, () => undefined, async () => Promise.reject(new Error('compiler failed')))).rejects.toThrow('compiler failed');
    const logs: string[] = [];
    await withLock(file, (line) => logs.push(line), async () => undefined);
    expect(logs).toEqual([]);
  });
});
