// Kbuild's compiler launcher (tools/builder/kbuild-cc.sh): a compiler probe in try-run's form is
// answered from the kept status after its first run; everything else runs as given.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KBUILD_CC } from '../../tools/builder/build.js';
import { discoverKernels } from '../../tools/kernel.js';
import { scratchDir } from '../scratch-dir.js';

const scratch = scratchDir('mmapkit-kbuild-cc-');

/**
 * A compiler that logs each call and answers as gcc would: 1 for an option it lacks (-mno-such),
 * killed by a signal for -mcrash, else 0.
 */
function fakeCompiler(name = 'fake-cc'): { compiler: string; calls: () => string[] } {
  const compiler = path.join(scratch(), name);
  const log = `${compiler}.log`;
  writeFileSync(log, '');
  writeFileSync(compiler, [
    '#!/bin/sh',
    `echo "$*" >>'${log}'`,
    'case " $* " in *" -mcrash "*) kill -TERM $$ ;; *" -mno-such "*) exit 1 ;; esac',
    'exit 0',
    '',
  ].join('\n'));
  chmodSync(compiler, 0o755);
  return { compiler, calls: () => readFileSync(log, 'utf8').split('\n').filter((line) => line !== '') };
}

/** try-run's form of a probe: its output in make's own temporary directory, named by make's pid. */
const probe = (option: string, pid: number): string[] =>
  ['-Werror', '-D__KERNEL__', option, '-c', '-x', 'c', '/dev/null', '-o', `${scratch()}/.tmp_${pid}/tmp`];

function launch(compiler: string, args: string[], probes: string | undefined): number | null {
  const env = { ...process.env, MMAPKIT_KBUILD_PROBES: probes };
  if (probes === undefined) delete env.MMAPKIT_KBUILD_PROBES;
  return spawnSync(KBUILD_CC, [compiler, ...args], { env }).status;
}

describe('kbuild-cc.sh', () => {
  it('answers a probe asked again from the kept status, whatever make\'s pid', () => {
    const { compiler, calls } = fakeCompiler();
    const probes = path.join(scratch(), 'answers-1');
    expect(launch(compiler, probe('-mno-sse', 100), probes)).toBe(0);
    expect(launch(compiler, probe('-mno-such', 101), probes)).toBe(1);
    expect(launch(compiler, probe('-mno-sse', 102), probes)).toBe(0);
    expect(launch(compiler, probe('-mno-such', 103), probes)).toBe(1);
    expect(calls()).toHaveLength(2);
    expect(readdirSync(probes)).toHaveLength(2);
  });

  it('asks again for other arguments, another compiler, or a compiler replaced in place', () => {
    const first = fakeCompiler('cc-a');
    const second = fakeCompiler('cc-b');
    const probes = path.join(scratch(), 'answers-2');
    launch(first.compiler, probe('-mno-sse', 1), probes);
    launch(first.compiler, probe('-mno-avx', 2), probes);
    launch(second.compiler, probe('-mno-sse', 3), probes);
    expect(first.calls()).toHaveLength(2);
    expect(second.calls()).toHaveLength(1);
    // A package upgrade writes a new file under the old name: a new inode and change time.
    const copy = `${first.compiler}.new`;
    writeFileSync(copy, readFileSync(first.compiler));
    chmodSync(copy, 0o755);
    renameSync(copy, first.compiler);
    launch(first.compiler, probe('-mno-sse', 4), probes);
    expect(first.calls()).toHaveLength(3);
  });

  it('keeps no status that is not an answer: a compiler killed by a signal is asked again', () => {
    const { compiler, calls } = fakeCompiler();
    const probes = path.join(scratch(), 'answers-3');
    expect(launch(compiler, probe('-mcrash', 1), probes)).toBe(143);
    expect(launch(compiler, probe('-mcrash', 2), probes)).toBe(143);
    expect(calls()).toHaveLength(2);
  });

  it('runs every compile that is not a probe, and every probe without a directory to keep answers in', () => {
    const { compiler, calls } = fakeCompiler();
    const probes = path.join(scratch(), 'answers-4');
    const compile = ['-Werror', '-c', '-o', `${scratch()}/x.o`, `${scratch()}/x.c`];
    expect(launch(compiler, compile, probes)).toBe(0);
    expect(launch(compiler, compile, probes)).toBe(0);
    expect(launch(compiler, [...compile, '-mno-such'], probes)).toBe(1);
    expect(launch(compiler, probe('-mno-sse', 1), undefined)).toBe(0);
    expect(launch(compiler, probe('-mno-sse', 2), undefined)).toBe(0);
    expect(calls()).toHaveLength(5);
    expect(readdirSync(scratch())).not.toContain('answers-4');
  });

  // The form is Kbuild's, not ours: each installed kernel's scripts/Makefile.compiler, asked through
  // its own cc-option and as-option, must reach the kept answers (else every build pays the probes).
  it.each(discoverKernels('all').map((kernel) => [kernel.version, kernel] as const))(
    'keeps the answers of cc-option and as-option from the headers of %s',
    (_version, kernel) => {
      const { compiler, calls } = fakeCompiler(`cc-${kernel.version}`);
      const probes = path.join(scratch(), `answers-${kernel.version}`);
      const dir = path.join(scratch(), `extmod-${kernel.version}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'Makefile'), [
        `include ${kernel.headers}/scripts/Makefile.compiler`,
        'all:',
        '\t@echo "$(call cc-option,-mno-sse) $(call cc-option,-mno-such) $(call as-option,-Wa$(comma)--noexecstack)"',
        '',
      ].join('\n'));
      const make = (): string => {
        const result = spawnSync('make', ['-s', '-C', dir, `KBUILD_EXTMOD=${dir}`, `CC=${KBUILD_CC} ${compiler}`, 'comma=,'], {
          env: { ...process.env, MMAPKIT_KBUILD_PROBES: probes },
          encoding: 'utf8',
        });
        expect(result.status, result.stderr).toBe(0);
        return result.stdout.trim();
      };
      expect(make()).toBe('-mno-sse  -Wa,--noexecstack');
      expect(calls()).toHaveLength(3);
      expect(make()).toBe('-mno-sse  -Wa,--noexecstack');
      expect(calls()).toHaveLength(3);
    },
  );
});
