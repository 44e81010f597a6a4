import { utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { snapshotKey, snapshotsEnabled } from '../../tools/qemu/snapshot.js';
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
});

describe('snapshotsEnabled', () => {
  it('is off unless MMAPKIT_SNAPSHOT=1', () => {
    expect(snapshotsEnabled({})).toBe(false);
    expect(snapshotsEnabled({ MMAPKIT_SNAPSHOT: '0' })).toBe(false);
    expect(snapshotsEnabled({ MMAPKIT_SNAPSHOT: '1' })).toBe(true);
  });
});
