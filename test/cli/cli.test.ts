/**
 * The CLI as a user runs it: `node bin/mmapkit.js ...` in a child process,
 * judged by exit code and output. The VM cases boot their own guests.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { REPO_ROOT } from '../../tools/paths.js';
import { type CliResult, runCli as mmapkit, runCliWithEnv as mmapkitWithEnv } from './run-cli.js';

/** The run directory a VM command used, from its "full log: ..." line. */
function runDirOf(result: CliResult): string | undefined {
  return /full log: (\S+)\/console\.log/.exec(result.stderr)?.[1];
}

/** QEMU processes still running with that run directory on their command line. */
function qemuProcessesUsing(dir: string): string[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return cmdline.includes('qemu-system') && cmdline.includes(dir) ? [pid] : [];
      } catch {
        return [];
      }
    });
}

/** An error a user can act on: one line after "mmapkit: error:", no stack trace. */
function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  const lines = result.stderr.split('\n').filter((line) => line.startsWith('mmapkit: error:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('help and bad input', () => {
  it.each([[[]], [['--help']], [['build', '--help']], [['vm', 'run', '--help']], [['vm', 'shell', '--help']], [['test', '--help']]])(
    'mmapkit %j prints usage and exits 0',
    async (args) => {
      const result = await mmapkit(...args);
      expect(result.code).toBe(ExitCode.PASSED);
      expect(result.stdout).toMatch(/^usage: mmapkit/);
    },
  );

  it('an unknown command is a usage error', async () => {
    expectOneLineError(await mmapkit('frobnicate'), ExitCode.USAGE, /unknown command 'frobnicate'/);
  });

  it('an unknown option is a usage error', async () => {
    expectOneLineError(await mmapkit('vm', 'run', '--frob', '--', 'true'), ExitCode.USAGE, /--frob/);
  });

  it('vm run without a command is a usage error', async () => {
    expectOneLineError(await mmapkit('vm', 'run'), ExitCode.USAGE, /needs a command/);
  });

  it('a bad --accel is a usage error', async () => {
    expectOneLineError(await mmapkit('vm', 'run', '--accel', 'warp', '--', 'true'), ExitCode.USAGE, /--accel takes/);
  });

  it('a kernel that is not installed is a bad --kernel, naming the installed ones', async () => {
    expectOneLineError(await mmapkit('build', '--kernel', '9.9.9-nope'), ExitCode.USAGE, /^mmapkit: error: --kernel: no kernel image .*installed: /);
  });

  it('a --kdir that holds no headers is a bad --kdir', async () => {
    expectOneLineError(await mmapkit('build', '--kdir', '/nonexistent'), ExitCode.USAGE, /^mmapkit: error: --kdir: no kernel headers/);
  });

  it.each([
    [['test', '--results', '/proc/x.json'], /--results: cannot write \/proc\/x\.json/],
    [['test', '--output-file', '/proc/x.xml', '--reporter', 'junit'], /--output-file: cannot write/],
    [['trace', '--out', '/proc/trace'], /--out: cannot write into \/proc\/trace/],
  ])('mmapkit %j: an output path that cannot be written fails before anything boots', async (args, pattern) => {
    const result = await mmapkit(...args);
    expectOneLineError(result, ExitCode.USAGE, pattern);
    expect(result.stderr).not.toMatch(/booted|build:/);
  });

  it('a --timeout longer than a Node timer can wait is a usage error, not an instant timeout', async () => {
    expectOneLineError(await mmapkit('vm', 'run', '--timeout', '3000000', '--', 'true'), ExitCode.USAGE, /--timeout takes at most \d+ seconds/);
  });
});

describe('build', () => {
  it('a second build with nothing changed does no work and says so', async () => {
    await mmapkit('build');
    const again = await mmapkit('build');
    expect(again.code).toBe(ExitCode.PASSED);
    expect(again.stderr).toMatch(/nothing to do/);
    expect(again.stderr).not.toMatch(/build: \S+ \.\.\./);
  });
});

describe('vm run', () => {
  it('runs a command with the module loaded and passes its output through', async () => {
    const result = await mmapkit('vm', 'run', '--', 'grep', 'mmapkit', '/proc/modules');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^mmapkit \d+ 0 - Live /m);
    expect(result.stderr).toMatch(/(booted|restored) \S+ \(tcg, .*\) in [\d.]+ s/);
  });

  it('restores the guest saved at the first boot, and boots every guest with MMAPKIT_SNAPSHOT=0', async () => {
    // The first of these saves the guest unless a run before it did.
    const first = await mmapkit('vm', 'run', '--', 'true');
    expect(first.code, first.stderr).toBe(0);
    const second = await mmapkit('vm', 'run', '--', 'cat', '/proc/sys/kernel/random/boot_id');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/mmapkit: restored \S+ \(tcg, .*\) in [\d.]+ s/);
    const cold = await mmapkitWithEnv({ MMAPKIT_SNAPSHOT: '0' }, 'vm', 'run', '--', 'cat', '/proc/sys/kernel/random/boot_id');
    expect(cold.code, cold.stderr).toBe(0);
    expect(cold.stderr).toMatch(/mmapkit: booted \S+ \(tcg, .*\) in [\d.]+ s/);
    // Restored guests share the saved memory but not the random state: the go line seeds it afresh.
    const third = await mmapkit('vm', 'run', '--', 'cat', '/proc/sys/kernel/random/boot_id');
    expect(third.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
    expect(third.stdout.trim()).not.toBe(second.stdout.trim());
  });

  it('refuses a bad MMAPKIT_SNAPSHOT before booting', async () => {
    const result = await mmapkitWithEnv({ MMAPKIT_SNAPSHOT: 'yes' }, 'vm', 'run', '--', 'true');
    expectOneLineError(result, ExitCode.USAGE, /MMAPKIT_SNAPSHOT=yes: takes 1 .* or 0 /);
    expect(result.stderr).not.toMatch(/booted|restored/);
  });

  it('the reference driver registers its three devices', async () => {
    const result = await mmapkit('vm', 'run', '--', 'ls', '-l', '/dev/mmapkit-remap', '/dev/mmapkit-fault', '/dev/mmapkit-ro');
    expect(result.code).toBe(0);
    for (const name of ['mmapkit-remap', 'mmapkit-fault', 'mmapkit-ro']) expect(result.stdout).toMatch(new RegExp(`^c.* /dev/${name}$`, 'm'));
  });

  it("exits with the guest command's status", async () => {
    expect((await mmapkit('vm', 'run', '--', 'false')).code).toBe(1);
    expect((await mmapkit('vm', 'run', '--', 'sh', '-c', 'exit 7')).code).toBe(7);
  });

  it('a command the guest does not have exits 127 and one it cannot execute 126, as in a shell', async () => {
    const missing = await mmapkit('vm', 'run', '--', 'no-such-cmd');
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/^mmapkit: no-such-cmd: command not found$/m);
    expect(missing.stderr).not.toMatch(/ENOENT|\n\s+at /);
    const directory = await mmapkit('vm', 'run', '--', '/tmp');
    expect(directory.code).toBe(126);
    expect(directory.stderr).toMatch(/^mmapkit: \/tmp: permission denied$/m);
  });

  it('a guest kernel panic ends with the crash code, the panic lines, and nothing left behind', async () => {
    const result = await mmapkit('vm', 'run', '--', 'sh', '-c', 'echo c > /proc/sysrq-trigger');
    expect(result.code).toBe(ExitCode.GUEST_CRASHED);
    expect(result.stderr).toMatch(/guest kernel crashed: Kernel panic - not syncing: sysrq triggered crash/);
    expect(result.stderr).toMatch(/Call Trace:/);
    const runDir = runDirOf(result);
    expect(runDir).toBeDefined();
    expect(qemuProcessesUsing(runDir!)).toEqual([]);
    // This run's own temp directory (its agent socket's, as QEMU was started with it); other runs on the machine have theirs.
    const socket = /path=([^,\s']*\/agent\.sock)/.exec(readFileSync(path.join(runDir!, 'qemu-command.sh'), 'utf8'))?.[1];
    expect(socket).toBeDefined();
    expect(existsSync(path.dirname(socket!))).toBe(false);
  });

  it('a command that outlives --timeout ends with the timeout code and no QEMU left', async () => {
    const result = await mmapkit('vm', 'run', '--timeout', '12', '--', 'sleep', '600');
    expect(result.code).toBe(ExitCode.TIMED_OUT);
    expect(result.stderr).toMatch(/the run took longer than 12 s/);
    expect(qemuProcessesUsing(runDirOf(result)!)).toEqual([]);
  });

  it('a guest that misses the boot deadline is a boot failure', async () => {
    const result = await mmapkit('vm', 'run', '--boot-timeout', '0.5', '--', 'true');
    expect(result.code).toBe(ExitCode.BOOT_FAILED);
    expect(result.stderr).toMatch(/did not come up within 0.5 s/);
    expect(qemuProcessesUsing(runDirOf(result)!)).toEqual([]);
  });

  it('the guest cannot write to the host root, only to its output directory', async () => {
    const result = await mmapkit(
      'vm', 'run', '--no-module', '--', 'sh', '-c',
      `touch ${REPO_ROOT}/should-not-exist 2>/dev/null && echo host-writable; ` +
        'touch /tmp/scratch && echo tmp-writable; touch "$MMAPKIT_OUT/result" && echo out-writable',
    );
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual(['tmp-writable', 'out-writable']);
  });

  it('--accel auto says which accelerator it used and still runs the command', async () => {
    const result = await mmapkit('vm', 'run', '--accel', 'auto', '--', 'true');
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/accelerator: (kvm|tcg) \(/);
  });
});

describe('vm shell', () => {
  it('gives a shell in the guest with the module loaded, and exit powers it off', async () => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'mmapkit.js'), 'vm', 'shell'], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let typed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // Type only once bash shows its prompt, as a person would: earlier input can be lost.
      if (!typed && /# $/.test(stdout.trimEnd() + ' ')) {
        typed = true;
        child.stdin.end('grep -c ^mmapkit /proc/modules\nexit\n');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(stdout).toMatch(/shell ready/);
    expect(stdout).toMatch(/^1\r?$/m);
    expect(stdout).toMatch(/reboot: Power down/);
  });
});
