// What the guest sees of the host (tools/qemu/guest-view.ts): which files are copied into the
// run's inputs and where, the shares in mount order, the guest root's skeleton, and the check
// that an unprivileged QEMU can read what the guest needs from the checkout.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SetupError } from '../../tools/exit-codes.js';
import { INIT_SCRIPT } from '../../tools/paths.js';
import { checkReadableByOthers, guestRootSkeleton, guestShares, inSharedTree, stageInputs } from '../../tools/qemu/guest-view.js';
import { scratchDir } from '../scratch-dir.js';

const scratch = scratchDir('mmapkit-guest-view-test-');

/** A file with this content and mode under the scratch directory, its parents made. */
function file(relative: string, content = relative, mode = 0o644): string {
  const at = path.join(scratch(), relative);
  mkdirSync(path.dirname(at), { recursive: true });
  writeFileSync(at, content);
  chmodSync(at, mode);
  return at;
}

describe('inSharedTree', () => {
  it('is true under /usr and under the checkout, and false elsewhere', () => {
    expect(inSharedTree('/usr/lib/modules/x/kernel/fs/9p/9p.ko', '/work/repo')).toBe(true);
    expect(inSharedTree('/work/repo/build/kernels/r/kmod/mmapkit.ko', '/work/repo')).toBe(true);
    expect(inSharedTree('/work/repo', '/work/repo')).toBe(true);
    for (const outside of ['/root/x/a.ko', '/tmp/a.ko', '/home/u/a.ko', '/work/repo-other/a.ko', '/usrx/a.ko']) {
      expect(inSharedTree(outside, '/work/repo'), outside).toBe(false);
    }
  });
});

describe('stageInputs', () => {
  it('copies only the files outside the shared trees, each at its host path below the inputs directory, read-only', () => {
    const checkout = path.join(scratch(), 'checkout');
    const inside = file('checkout/build/a.ko');
    const secret = file('home/user/driver/b.ko', 'driver bytes', 0o600);
    const inputs = path.join(scratch(), 'run-1', 'inputs');
    const staged = stageInputs([inside, secret, secret, '/usr/bin/env'], inputs, undefined, checkout);
    expect(staged).toEqual([secret]);
    const copy = path.join(inputs, secret);
    expect(readFileSync(copy, 'utf8')).toBe('driver bytes');
    expect(statSync(copy).mode & 0o777).toBe(0o444);
    expect(existsSync(path.join(inputs, inside))).toBe(false);
    expect(existsSync(path.join(inputs, 'usr'))).toBe(false);
    // The user's own file keeps its mode.
    expect(statSync(secret).mode & 0o777).toBe(0o600);
  });

  it('opens the inputs directory to this user only, or to QEMU group too when QEMU runs as another user', () => {
    const secret = file('elsewhere/c.ko');
    const alone = path.join(scratch(), 'run-2', 'inputs');
    stageInputs([secret], alone, undefined, '/nonexistent-checkout');
    expect(statSync(alone).mode & 0o777).toBe(0o700);
    const shared = path.join(scratch(), 'run-3', 'inputs');
    const gid = process.getgid?.() ?? 0;
    stageInputs([secret], shared, gid, '/nonexistent-checkout');
    expect(statSync(shared).mode & 0o777).toBe(0o750);
    expect(statSync(shared).gid).toBe(gid);
    // Every level inside is searchable, so that the group can reach the copy.
    for (let dir = path.dirname(path.join(shared, secret)); dir !== shared; dir = path.dirname(dir)) expect(statSync(dir).mode & 0o777).toBe(0o755);
  });

  it('makes no inputs directory when every file is shared already', () => {
    const inputs = path.join(scratch(), 'run-4', 'inputs');
    expect(stageInputs(['/usr/bin/env'], inputs)).toEqual([]);
    expect(existsSync(inputs)).toBe(false);
  });
});

describe('guestShares', () => {
  it('is /usr and the checkout read-only, the inputs when there are some, and out, the one writable share, last', () => {
    expect(guestShares({ outputDir: '/w/build/runs/r/out', inputsDir: '/w/build/runs/r/inputs' }, '/w')).toEqual([
      { tag: 'usr', path: '/usr', writable: false },
      { tag: 'checkout', path: '/w', writable: false },
      { tag: 'inputs', path: '/w/build/runs/r/inputs', writable: false },
      { tag: 'out', path: '/w/build/runs/r/out', writable: true },
    ]);
    expect(guestShares({ outputDir: '/o' }, '/w').map((share) => share.tag)).toEqual(['usr', 'checkout', 'out']);
  });

  it('are the tags guest/init.sh mounts, each with the access the host gives it', () => {
    const init = readFileSync(INIT_SCRIPT, 'utf8');
    for (const share of guestShares({ outputDir: '/o', inputsDir: '/i' }, '/w')) {
      expect(init).toMatch(new RegExp(`^\\s*share ${share.tag} \\S+ ${share.writable ? 'rw' : 'ro'}\\b`, 'm'));
    }
    expect(init).toContain(`mmapkit.inputs=*) INPUTS=`);
  });
});

describe('guestRootSkeleton', () => {
  /** A stand-in for the host's root: merged-/usr links, and an ld.so.cache. */
  function fakeHost(name: string, links: Record<string, string>): string {
    const root = path.join(scratch(), name);
    mkdirSync(path.join(root, 'etc'), { recursive: true });
    writeFileSync(path.join(root, 'etc', 'ld.so.cache'), 'cache bytes');
    writeFileSync(path.join(root, 'etc', 'shadow'), 'root:secret');
    for (const [link, target] of Object.entries(links)) symlinkSync(target, path.join(root, link));
    return root;
  }

  it('links /bin, /sbin, /lib, /lib64 into /usr as the host does, with an /etc of its own that holds nothing of the host but ld.so.cache', () => {
    const host = fakeHost('merged', { bin: 'usr/bin', sbin: 'usr/sbin', lib: 'usr/lib', lib64: 'usr/lib64' });
    const skeleton = guestRootSkeleton(host);
    for (const name of ['bin', 'sbin', 'lib', 'lib64']) expect(skeleton).toContainEqual({ type: 'symlink', path: name, target: `usr/${name}` });
    const etc = skeleton.filter((entry) => entry.path.startsWith('etc/')).map((entry) => entry.path).sort();
    expect(etc).toEqual(['etc/group', 'etc/ld.so.cache', 'etc/mtab', 'etc/passwd']);
    const cache = skeleton.find((entry) => entry.path === 'etc/ld.so.cache');
    expect(cache?.type === 'file' && Buffer.from(cache.data).toString()).toBe('cache bytes');
    const passwd = skeleton.find((entry) => entry.path === 'etc/passwd');
    expect(passwd?.type === 'file' && Buffer.from(passwd.data).toString()).toMatch(/^root:x:0:0:/);
    for (const dir of ['usr', 'proc', 'sys', 'dev', 'tmp', 'run', 'root', 'var/tmp']) expect(skeleton).toContainEqual({ type: 'dir', path: dir, mode: 0o755 });
    expect(skeleton.map((entry) => entry.path)).not.toContain('home');
  });

  it('refuses a host whose /bin is not a link into /usr', () => {
    const host = fakeHost('split', { lib: 'usr/lib' });
    mkdirSync(path.join(host, 'bin'));
    expect(() => guestRootSkeleton(host)).toThrow(SetupError);
    expect(() => guestRootSkeleton(host)).toThrow(/bin is not a link into \/usr/);
  });
});

describe('checkReadableByOthers', () => {
  it('passes files readable by others along their path from the checkout down, and names the first that is not', () => {
    const checkout = path.join(scratch(), 'readable');
    const open = file('readable/build/guest/agent.cjs');
    expect(() => checkReadableByOthers([open, '/elsewhere/x'], 'mmapkit-qemu', checkout)).not.toThrow();
    const privateFile = file('readable/build/guest/addon.node', 'x', 0o600);
    expect(() => checkReadableByOthers([privateFile], 'mmapkit-qemu', checkout)).toThrow(/mmapkit-qemu, which cannot read build\/guest\/addon\.node .*mode 600/);
    chmodSync(path.join(checkout, 'build'), 0o700);
    try {
      expect(() => checkReadableByOthers([open], 'mmapkit-qemu', checkout)).toThrow(/\(build is mode 700\)/);
    } finally {
      chmodSync(path.join(checkout, 'build'), 0o755);
    }
  });
});
