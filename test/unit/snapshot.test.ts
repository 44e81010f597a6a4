import { closeSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../tools/exit-codes.js';
import { SNAPSHOTS_KEPT, openSnapshot, pruneSnapshots, snapshotKey, snapshotsEnabled } from '../../tools/qemu/snapshot.js';
import { scratchDir } from '../scratch-dir.js';

const scratch = scratchDir('mmapkit-snapshot-test-');
let kernel = '';
let initramfs = '';
beforeAll(() => {
  kernel = path.join(scratch(), 'vmlinux');
  initramfs = path.join(scratch(), 'initramfs.cpio');
  writeFileSync(kernel, 'kernel');
  writeFileSync(initramfs, 'initramfs');
});

const command = (run: string): string[] => ['qemu', '-virtfs', `local,path=${run}/out,mount_tag=out`, '-chardev', `socket,id=agent,path=/tmp/t-${run.slice(-1)}/agent.sock`];
const key = (cmd: string[], runPaths: string[]): string => snapshotKey({ command: cmd, runPaths, files: [kernel, initramfs] });

describe('snapshotKey', () => {
  it('is the same for two runs that differ only in their own paths', () => {
    expect(key(command('/r/run1'), ['/r/run1', '/tmp/t-1'])).toBe(key(command('/r/run2'), ['/r/run2', '/tmp/t-2']));
  });
  it('changes with any other word of the command line', () => {
    const base = command('/r/run1');
    expect(key([...base, '-device', 'bochs-display'], ['/r/run1', '/tmp/t-1'])).not.toBe(key(base, ['/r/run1', '/tmp/t-1']));
    expect(key(base.map((a) => a.replace('mount_tag=out', 'mount_tag=outx')), ['/r/run1', '/tmp/t-1'])).not.toBe(key(base, ['/r/run1', '/tmp/t-1']));
  });
  it('changes when the kernel image or the initramfs changes', () => {
    const before = key(command('/r/run1'), ['/r/run1']);
    writeFileSync(initramfs, 'initramfs, rebuilt');
    expect(key(command('/r/run1'), ['/r/run1'])).not.toBe(before);
    const again = key(command('/r/run1'), ['/r/run1']);
    utimesSync(kernel, new Date(1000), new Date(1000));
    expect(key(command('/r/run1'), ['/r/run1'])).not.toBe(again);
  });
  it("changes with the agent bundle's bytes, not with a rewrite that leaves them as they were", () => {
    const bundle = path.join(scratch(), 'agent.cjs');
    writeFileSync(bundle, 'agent 1');
    const withBundle = (): string => snapshotKey({ command: command('/r/run1'), runPaths: ['/r/run1'], files: [kernel, initramfs], contents: [bundle] });
    const before = withBundle();
    utimesSync(bundle, new Date(5000), new Date(5000));
    expect(withBundle()).toBe(before);
    writeFileSync(bundle, 'agent 2');
    expect(withBundle()).not.toBe(before);
  });
});

describe('snapshotsEnabled', () => {
  it('is on unless MMAPKIT_SNAPSHOT=0', () => {
    expect(snapshotsEnabled({})).toBe(true);
    expect(snapshotsEnabled({ MMAPKIT_SNAPSHOT: '' })).toBe(true);
    expect(snapshotsEnabled({ MMAPKIT_SNAPSHOT: '1' })).toBe(true);
    expect(snapshotsEnabled({ MMAPKIT_SNAPSHOT: '0' })).toBe(false);
  });
  it('refuses any other value, naming the variable', () => {
    expect(() => snapshotsEnabled({ MMAPKIT_SNAPSHOT: 'yes' })).toThrow(UserError);
    expect(() => snapshotsEnabled({ MMAPKIT_SNAPSHOT: 'yes' })).toThrow(/^MMAPKIT_SNAPSHOT=yes: takes 1 .* or 0 /);
  });
});

describe('saved states on disk', () => {
  const cache = scratchDir('mmapkit-snapshot-cache-');
  const state = (name: string, usedSecondsAgo: number): string => {
    const file = path.join(cache(), name);
    writeFileSync(file, name);
    const at = new Date(Date.now() - usedSecondsAgo * 1000);
    utimesSync(file, at, at);
    return file;
  };
  const left = (): string[] => readdirSync(cache()).sort();

  it(`keeps the one just saved and the most recently used others, ${SNAPSHOTS_KEPT} in all`, () => {
    const names = Array.from({ length: SNAPSHOTS_KEPT + 2 }, (_, i) => `snapshot-${String(i).padStart(16, '0')}.state`);
    names.forEach((name, i) => state(name, 100 + i)); // names[0] the most recently used
    const saved = state('snapshot-ffffffffffffffff.state', 1000);
    pruneSnapshots(cache(), saved);
    expect(left()).toEqual([...names.slice(0, SNAPSHOTS_KEPT - 1), path.basename(saved)].sort());
    for (const name of left()) rmSync(path.join(cache(), name));
  });

  it("removes a staged state left by a save that never finished, not one being written now", () => {
    const saved = state('snapshot-ffffffffffffffff.state', 0);
    state('snapshot-0000000000000001.state.123.partial', 3600);
    state('snapshot-0000000000000002.state.456.partial', 5);
    pruneSnapshots(cache(), saved);
    expect(left()).toEqual(['snapshot-0000000000000002.state.456.partial', 'snapshot-ffffffffffffffff.state']);
    for (const name of left()) rmSync(path.join(cache(), name));
  });

  it('opens a state for restoring and marks it used now; none when it is gone', () => {
    const file = state('snapshot-0000000000000003.state', 3600);
    const fd = openSnapshot(file);
    expect(fd).toBeTypeOf('number');
    closeSync(fd!);
    expect(Date.now() - statSync(file).mtimeMs).toBeLessThan(60_000);
    rmSync(file);
    expect(openSnapshot(file)).toBeUndefined();
  });
});
