import { describe, expect, it } from 'vitest';
import { UserError } from '../../tools/exit-codes.js';
import { DEFAULT_SIZES, KiB, MiB, formatSize, makePlan, parseSize, parseSizes, passesFor, readBufferSize } from '../../tools/bench/plan.js';
import { defaultOutDir, guestMemoryMiB, parseBenchArgs } from '../../tools/bench/command.js';
import { qemuArgs, type QemuConfig } from '../../tools/qemu/qemu-args.js';
import { parseOption, valueOf } from './qemu-command-line.js';

describe('bench plan', () => {
  it('default sizes run from 4 KiB to 64 MiB in powers of 4', () => {
    expect(DEFAULT_SIZES[0]).toBe(4 * KiB);
    expect(DEFAULT_SIZES[DEFAULT_SIZES.length - 1]).toBe(64 * MiB);
    for (let i = 1; i < DEFAULT_SIZES.length; i++) expect(DEFAULT_SIZES[i]! / DEFAULT_SIZES[i - 1]!).toBe(4);
  });

  it('parses and prints sizes', () => {
    expect(parseSize('4K')).toBe(4096);
    expect(parseSize('64m')).toBe(64 * MiB);
    expect(parseSize('8192')).toBe(8192);
    expect(parseSizes('16K, 4K,16K')).toEqual([4096, 16384]);
    for (const bad of ['', 'x', '1K', '4097', '512M']) expect(() => parseSize(bad)).toThrow(UserError);
    expect(() => parseSizes(',')).toThrow(UserError);
    expect(DEFAULT_SIZES.map(formatSize).join(',')).toBe('4K,16K,64K,256K,1M,4M,16M,64M');
  });

  it('has every strategy for every size, mapping cases first, and no read() buffer larger than the size', () => {
    const plan = makePlan({ sizes: [4 * KiB, 1 * MiB], repeats: 3 });
    expect(plan.repeats).toBe(3);
    const groups = plan.cases.map((c) => c.group);
    expect(groups.lastIndexOf('map')).toBeLessThan(groups.indexOf('seq'));
    expect(plan.cases.filter((c) => c.group === 'map')).toHaveLength(10);
    const seq4K = plan.cases.filter((c) => c.group === 'seq' && c.size === 4 * KiB).map((c) => c.strategy);
    expect(seq4K).toEqual(['mmap-remap', 'mmap-fault', 'anon', 'read-4K']);
    expect(plan.cases.filter((c) => c.group === 'seq' && c.size === MiB)).toHaveLength(6);
    expect(readBufferSize('read-64K')).toBe(64 * KiB);
    expect(readBufferSize('anon')).toBeUndefined();
    expect(passesFor(4 * KiB, 64 * MiB)).toBe(16384);
    expect(passesFor(256 * MiB, 64 * MiB)).toBe(1);
    expect(() => makePlan({ repeats: 0 })).toThrow(UserError);
  });
});

describe('bench command line', () => {
  it('parses its flags', () => {
    const flags = parseBenchArgs(['--sizes', '4K,16K', '--repeat', '3', '--icount', '--out', '/tmp/b']);
    expect(flags).toMatchObject({ sizes: [4096, 16384], repeats: 3, icount: true, out: '/tmp/b', accel: 'tcg' });
    expect(parseBenchArgs([]).sizes).toEqual(DEFAULT_SIZES);
  });

  it.each([[['--repeat', '0']], [['--repeat', '1.5']], [['--accel', 'xen']], [['--icount', '--accel', 'kvm']], [['--frob']], [['stray']]])(
    'refuses %j as a usage error',
    (args) => {
      expect(() => parseBenchArgs(args)).toThrow(UserError);
    },
  );

  it('writes under build/bench/<time> by default and sizes the guest for the largest buffer', () => {
    expect(defaultOutDir(new Date('2026-01-02T03:04:05Z'))).toMatch(/build\/bench\/20260102-030405$/);
    expect(guestMemoryMiB(64 * MiB)).toBe(1024);
    expect(guestMemoryMiB(256 * MiB)).toBe(1280);
  });

  it('threads --icount to QEMU: instructions counted at the given shift, an idle guest not sleeping in real time', () => {
    const config: QemuConfig = {
      accel: 'tcg', vmlinux: '/v', initramfs: '/i', memoryMiB: 1024, cpus: 1, shares: [],
      interactive: false, guestParams: {},
    };
    expect(qemuArgs(config)).not.toContain('-icount');
    for (const icount of [0, 3]) {
      const icountOption = parseOption(valueOf(qemuArgs({ ...config, icount }), '-icount'));
      expect(Number(icountOption.get('shift'))).toBe(icount);
      expect(icountOption.get('sleep')).toBe('off');
    }
  });
});
