/**
 * The guest sees only what the run needs (tools/qemu/guest-view.ts) and QEMU
 * runs without root (tools/qemu/qemu-user.ts), checked as a user would run
 * mmapkit: from the guest, host secrets are out of reach and nothing but the
 * output directory can be written; QEMU's process is unprivileged and
 * sandboxed; a driver kept under /root with its profile in /tmp is tested
 * like any other; and a target that never comes up is one line, no cases.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { discoverKernel } from '../../tools/kernel.js';
import { REPO_ROOT, moduleObject } from '../../tools/paths.js';
import { type CliResult, runCli } from './run-cli.js';

const isRoot = process.getuid?.() === 0;
/** What this test puts on the host, removed afterwards. */
const created: string[] = [];
afterAll(() => {
  for (const item of created) rmSync(item, { recursive: true, force: true });
});

/** A fresh file with a random name in `dir`, holding `content`. */
function plant(dir: string, content: string): string {
  const file = path.join(dir, `mmapkit-confine-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  writeFileSync(file, content, { mode: 0o644 });
  created.push(file);
  return file;
}

/** The lines that carry a one-line error, and no stack trace anywhere. */
function errorLines(result: CliResult): string[] {
  expect(result.stderr).not.toMatch(/\n\s+at /);
  return result.stderr.split('\n').filter((line) => line.startsWith('mmapkit: error:'));
}

describe('what the guest can read and write of the host', () => {
  it.skipIf(!isRoot)('/etc/shadow, /root and /home are not there; /usr and the checkout are, read-only; out/ is the one writable place', async () => {
    expect(existsSync('/etc/shadow'), 'the host has a shadow file to hide').toBe(true);
    const inRoot = plant('/root', 'secret in /root');
    const inHome = plant('/home', 'secret in /home');
    const probes = [
      ...['/etc/shadow', inRoot, inHome].map((file) => `cat ${file} >/dev/null 2>&1 && echo read:${file}`),
      ...['/root', '/home'].map((dir) => `ls -A ${dir} 2>/dev/null | sed 's|^|listed:${dir}/|'`),
      `test -x /usr/bin/node && echo usr-visible`,
      `test -f ${REPO_ROOT}/package.json && echo checkout-visible`,
      ...['/usr/mmapkit-x', `${REPO_ROOT}/mmapkit-x`, '/etc/mmapkit-x', '/mmapkit-x'].map((file) => `touch ${file} 2>/dev/null && echo wrote:${file}`),
      'touch "$MMAPKIT_OUT/result" && echo wrote:out',
    ];
    const result = await runCli('vm', 'run', '--no-module', '--', 'sh', '-c', probes.join('; '));
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    const lines = result.stdout.split('\n').filter(Boolean);
    // The guest's own /root is an empty scratch tmpfs, and it has no /home.
    expect(lines).toEqual(['usr-visible', 'checkout-visible', 'wrote:out']);
    expect(existsSync(path.join(REPO_ROOT, 'mmapkit-x'))).toBe(false);
  });
});

describe('QEMU runs unprivileged', () => {
  it('its process has no root uid and its seccomp filter on', async () => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'mmapkit.js'), 'vm', 'run', '--no-module', '--', 'sh', '-c', 'echo guest-up; sleep 3'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // QEMU is a child of mmapkit's process; read its status while the guest command runs.
    const status = await new Promise<string | undefined>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (!chunk.toString().includes('guest-up')) return;
        const qemu = readdirSync('/proc')
          .filter((entry) => /^\d+$/.test(entry))
          .map((pid) => {
            try {
              return readFileSync(`/proc/${pid}/status`, 'utf8');
            } catch {
              return '';
            }
          })
          .find((text) => /^Name:\s+qemu-system/m.test(text) && new RegExp(`^PPid:\\s+${child.pid}$`, 'm').test(text));
        resolve(qemu);
      });
      child.on('close', () => resolve(undefined));
    });
    const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('close', resolve)));
    expect(code, stderr.slice(-2000)).toBe(0);
    expect(status, 'a QEMU process, child of mmapkit, while the guest ran').toBeDefined();
    const uids = /^Uid:\s+(.*)$/m.exec(status!)?.[1]?.split(/\s+/).map(Number);
    const gids = /^Gid:\s+(.*)$/m.exec(status!)?.[1]?.split(/\s+/).map(Number);
    // Real, effective, saved and file-system ids: none of them root.
    expect(uids).toHaveLength(4);
    expect(uids!.every((id) => id !== 0)).toBe(true);
    expect(gids!.every((id) => id !== 0)).toBe(true);
    expect(/^Seccomp:\s+(\d+)$/m.exec(status!)?.[1], 'seccomp mode 2: a filter').toBe('2');
  });
});

describe('a driver kept anywhere, its profile anywhere', () => {
  let driverDir = '';
  let profileDir = '';
  /** A profile in /tmp for the reference driver's remap device, its module copied under /root. */
  const profile = (name: string, overrides: Record<string, unknown> = {}): string => {
    const file = path.join(profileDir, `${name}.json`);
    const remap = { name, device: '/dev/mmapkit-remap', module: path.join(driverDir, 'pfnbuf', 'mmapkit.ko'), size: 1048576 };
    writeFileSync(file, JSON.stringify({ ...remap, writable: true, initial: 'zero', population: 'prefault', private: 'cow', readWrite: true, ...overrides }));
    return file;
  };

  beforeAll(async () => {
    expect((await runCli('build')).code).toBe(0);
    const base = isRoot ? '/root' : os.homedir();
    driverDir = mkdtempSync(path.join(base, 'mmapkit-driver-'));
    profileDir = mkdtempSync(path.join('/tmp', 'mmapkit-profile-'));
    created.push(driverDir, profileDir);
    // Private to the user, as a home directory's files are: only mmapkit's copy reaches the guest.
    const ko = path.join(driverDir, 'pfnbuf', 'mmapkit.ko');
    mkdirSync(path.dirname(ko), { mode: 0o700 });
    copyFileSync(moduleObject(discoverKernel({}).version), ko);
    chmodSync(ko, 0o600);
  }, 600_000);

  it('a module under /root with its profile in /tmp: every case passes', async () => {
    const result = await runCli('test', '--profile', profile('pfnbuf'));
    expect(result.code, `${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`).toBe(ExitCode.PASSED);
    expect(result.stdout).toMatch(/^[1-9]\d* passed, 0 failed, \d+ skipped, 0 crashed$/m);
    // The copy served that guest only: no later guest finds it under build/runs/.
    const runDir = /results in (\S+)\/results\.json/.exec(result.stdout)?.[1];
    expect(runDir, result.stdout.slice(-500)).toBeDefined();
    expect(existsSync(path.join(path.resolve(REPO_ROOT, runDir!), 'inputs'))).toBe(false);
  }, 900_000);

  it('a device that never appears: one line, exit 2, no case run', async () => {
    const result = await runCli('test', '--profile', profile('nodevice', { device: '/dev/mmapkit-nonexistent' }));
    expect(result.code).toBe(ExitCode.USAGE);
    expect(errorLines(result)).toEqual(['mmapkit: error: nodevice.json: device /dev/mmapkit-nonexistent does not exist after mmapkit.ko loaded']);
    expect(result.stdout).toBe('');
  });

  it('a module that does not load: one line with what the errno means, the errno and the kernel\'s words, exit 3, no case run', async () => {
    const result = await runCli('test', '--profile', profile('noload', { moduleParams: 'size=banana' }));
    expect(result.code).toBe(ExitCode.SETUP);
    const [line, ...more] = errorLines(result);
    expect(more).toEqual([]);
    expect(line).toMatch(/^mmapkit: error: noload\.json: module \S+\/mmapkit\.ko does not load: could not insert module: Invalid parameters \(EINVAL: .*, finit_module\) \(kernel: .*`banana' invalid for parameter `size'\)$/);
    expect(result.stdout).toBe('');
  });

  // The test workers start while the regions are recorded (tools/test/command.ts): a guest that dies then
  // is the run's crash, said once, and the files that were waiting for it print nothing.
  it.each([
    ['when the target is first opened', 1],
    ['while its region is recorded', 2],
  ])('a setup that takes the guest down %s: the crash, its exit code, no case run', async (_when, open) => {
    const setup = path.join(profileDir, `crash-on-open-${open}.ts`);
    // The n-th open of the target panics the guest; a marker in the guest's /tmp counts the opens.
    writeFileSync(setup, `import { readFileSync, writeFileSync } from 'node:fs';
const marker = '/tmp/mmapkit-crash-test-opens';
export default {
  open(context: { native: { open(path: string, flags: number): number }; c: { O_RDWR: number } }) {
    let opens = 1;
    try { opens += Number(readFileSync(marker, 'utf8')); } catch { /* the first */ }
    writeFileSync(marker, String(opens));
    if (opens === ${open}) writeFileSync('/proc/sysrq-trigger', 'c');
    const fd = context.native.open('/dev/zero', context.c.O_RDWR);
    return { fd, fds: [fd], offset: 0n, size: 4096n, reach: 'fork' };
  },
};
`);
    const result = await runCli('test', '--profile', profile(`crash${open}`, { device: '/dev/zero', module: undefined, setup, size: 4096, initial: 'zero', population: 'on-demand', private: 'rejected', readWrite: undefined }));
    expect(result.code, result.stderr.slice(-2000)).toBe(ExitCode.GUEST_CRASHED);
    expect(result.stderr).toMatch(/^mmapkit: the guest crashed or hung while the targets were brought up, before any case: guest kernel crashed: Kernel panic - not syncing: sysrq triggered crash/m);
    expect(errorLines(result)).toEqual([]);
    expect(result.stdout).toBe('');
  });
});
