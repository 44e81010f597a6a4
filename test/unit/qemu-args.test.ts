// QEMU's command line (tools/qemu/qemu-args.ts), read back as QEMU and the
// guest kernel read it: what the machine boots, what it shares and how, and
// what happens when the guest crashes, rather than the strings the code writes.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BOOT_LEVERS, LEAK_REVEALING, kernelCommandLine, qemuArgs, type QemuConfig, shellQuote } from '../../tools/qemu/qemu-args.js';
import { guestShares } from '../../tools/qemu/guest-view.js';
import { CHANNEL_NAME } from '../../guest/protocol.js';
import { kernelParams, parseOption, parsedValuesOf, valueOf, valuesOf } from './qemu-command-line.js';

const base: QemuConfig = {
  accel: 'tcg',
  vmlinux: '/work/build/kernels/some-release/vmlinux',
  initramfs: '/work/build/kernels/some-release/initramfs-0123456789abcdef.cpio',
  memoryMiB: 1024,
  cpus: 2,
  shares: guestShares({ outputDir: '/work/build/runs/run-1/out' }, '/work'),
  interactive: false,
  guestParams: { mode: 'agent', uid: '1000' },
};

const config = (overrides: Partial<QemuConfig> = {}): QemuConfig => ({ ...base, ...overrides });

/** The parsed -virtfs option with this mount tag. */
function virtfs(args: string[], tag: string): Map<string, string> {
  const matching = parsedValuesOf(args, '-virtfs').filter((option) => option.get('mount_tag') === tag);
  expect(matching, `one virtfs with mount_tag=${tag}`).toHaveLength(1);
  return matching[0] ?? new Map();
}

/** The guest kernel's parameters in the argv. */
const paramsOf = (args: string[]): Map<string, string> => kernelParams(valueOf(args, '-append'));

describe('qemuArgs: the machine', () => {
  const args = qemuArgs(base);

  it('boots the given kernel and initramfs directly', () => {
    for (const given of [base, config({ vmlinux: '/elsewhere/vmlinux-other', initramfs: '/elsewhere/other.cpio' })]) {
      const argv = qemuArgs(given);
      expect(valueOf(argv, '-kernel')).toBe(given.vmlinux);
      expect(valueOf(argv, '-initrd')).toBe(given.initramfs);
    }
  });

  it('leaves PAT on: the default firmware (qboot leaves MTRRs off, and the guest then disables PAT), no nopat', () => {
    expect(args).not.toContain('-bios');
    expect(args.join(' ')).not.toMatch(/qboot/);
    expect(paramsOf(args).has('nopat')).toBe(false);
  });

  it('takes the accelerator, memory and CPUs from the config', () => {
    for (const given of [config({ accel: 'tcg', memoryMiB: 768, cpus: 3 }), config({ accel: 'kvm', memoryMiB: 2048, cpus: 1 })]) {
      const argv = qemuArgs(given);
      expect(parseOption(valueOf(argv, '-accel')).get('')).toBe(given.accel);
      // QEMU reads a bare -m number as MiB, and an M suffix as MiB too.
      expect(Number(/^(\d+)M?$/.exec(valueOf(argv, '-m'))?.[1])).toBe(given.memoryMiB);
      expect(Number(parseOption(valueOf(argv, '-smp')).get(''))).toBe(given.cpus);
    }
  });

  it('has no device it was not asked for: no defaults, no user config, no network, no display', () => {
    expect(args).toContain('-nodefaults');
    expect(args).toContain('-no-user-config');
    expect(valueOf(args, '-net')).toBe('none');
    expect(valueOf(args, '-display')).toBe('none');
    expect(valuesOf(args, '-device')).toEqual([]);
    expect(valuesOf(args, '-object')).toEqual([]);
  });

  it('ends when the guest crashes: every oops panics, a panic reboots at once, and QEMU exits instead of rebooting', () => {
    const params = paramsOf(args);
    expect(params.get('oops')).toBe('panic');
    expect(Number(params.get('panic'))).toBeLessThan(0);
    expect(args).toContain('-no-reboot');
  });

  it('gives the guest 4-level page tables, as real x86-64 machines have', () => {
    expect(parseOption(valueOf(args, '-cpu')).get('la57')).toBe('off');
  });

  it('puts the kernel console on the first serial port, through a stdio chardev that leaves Ctrl-C to the guest', () => {
    const serial = /^chardev:(.+)$/.exec(valueOf(args, '-serial'))?.[1];
    const chardev = parsedValuesOf(args, '-chardev').find((option) => option.get('id') === serial);
    expect(chardev?.get('')).toBe('stdio');
    expect(chardev?.get('signal')).toBe('off');
    // The first -serial is the guest's ttyS0.
    expect(paramsOf(args).get('console')).toBe('ttyS0');
  });
});

describe('qemuArgs: the kernel command line', () => {
  it('is kernelCommandLine(config)', () => {
    expect(valueOf(qemuArgs(base), '-append')).toBe(kernelCommandLine(base));
  });

  it('leaves allocations uncleared and poisons freed pages, so a driver that maps memory it never cleared shows stale bytes (taxonomy #5)', () => {
    const params = paramsOf(qemuArgs(base));
    expect(params.get('init_on_alloc')).toBe('0');
    expect(['1', 'on', 'y']).toContain(params.get('page_poison'));
    expect(params.has('init_on_free')).toBe(false);
  });

  it('carries every guest parameter as mmapkit.<key>=<value>, and nothing else under mmapkit.', () => {
    const guestParams = { mode: 'shell', cmd: 'echo', 'odd-key': 'a=b,c' };
    const params = kernelParams(kernelCommandLine(config({ guestParams })));
    const carried = [...params].filter(([key]) => key.startsWith('mmapkit.')).map(([key, value]) => [key.slice('mmapkit.'.length), value]);
    expect(Object.fromEntries(carried)).toEqual(guestParams);
  });

  it('refuses a guest parameter with whitespace or no value', () => {
    expect(() => kernelCommandLine(config({ guestParams: { cmd: 'echo hi' } }))).toThrow(/mmapkit\.cmd/);
    expect(() => kernelCommandLine(config({ guestParams: { cmd: 'a\tb' } }))).toThrow();
    expect(() => kernelCommandLine(config({ guestParams: { cmd: '' } }))).toThrow();
    expect(() => qemuArgs(config({ guestParams: { mode: 'agent now' } }))).toThrow();
  });

  it('carries the measured boot levers, none of which touches PAT, the leak-revealing boot or what the console shows', () => {
    const params = paramsOf(qemuArgs(base));
    for (const lever of BOOT_LEVERS) {
      const [key, value] = lever.split('=');
      expect(params.get(key!)).toBe(value);
    }
    const guarded = ['nopat', 'pat', 'init_on_alloc', 'init_on_free', 'page_poison', 'loglevel', 'quiet', 'console', 'panic', 'oops'];
    expect(BOOT_LEVERS.map((lever) => lever.split('=')[0]).filter((key) => guarded.includes(key!))).toEqual([]);
    for (const word of LEAK_REVEALING) expect(kernelCommandLine(base).split(' ')).toContain(word);
  });

  it('adds the extra words a boot lever is measured with at the end, after everything it must not replace', () => {
    const plain = kernelCommandLine(base);
    expect(kernelCommandLine(config({ kernelArgs: [] }))).toBe(plain);
    const line = kernelCommandLine(config({ kernelArgs: ['tsc=reliable', 'quiet'] }));
    expect(line).toBe(`${plain} tsc=reliable quiet`);
    expect(kernelParams(line).get('tsc')).toBe('reliable');
    expect(() => kernelCommandLine(config({ kernelArgs: ['a b'] }))).toThrow(/kernel argument/);
    expect(() => kernelCommandLine(config({ kernelArgs: [''] }))).toThrow(/kernel argument/);
  });
});

describe('qemuArgs: shared directories', () => {
  const outputDir = '/work/build/runs/run-1/out';
  const inputsDir = '/work/build/runs/run-1/inputs';

  it('shares /usr and the checkout read-only, and only the output directory writable; never the host root', () => {
    const args = qemuArgs(config({ shares: guestShares({ outputDir, inputsDir }, '/work') }));
    expect(virtfs(args, 'usr').get('path')).toBe('/usr');
    expect(virtfs(args, 'checkout').get('path')).toBe('/work');
    expect(virtfs(args, 'inputs').get('path')).toBe(inputsDir);
    for (const tag of ['usr', 'checkout', 'inputs']) expect(virtfs(args, tag).get('readonly')).toBe('on');
    expect(virtfs(args, 'out').get('path')).toBe(outputDir);
    expect(virtfs(args, 'out').has('readonly')).toBe(false);
    const paths = valuesOf(args, '-virtfs').map((value) => parseOption(value).get('path'));
    expect(paths).not.toContain('/');
    expect(paths).toHaveLength(4);
  });

  it('shares no inputs directory when the run has no files to copy', () => {
    expect(valuesOf(qemuArgs(base), '-virtfs').map((value) => parseOption(value).get('mount_tag'))).toEqual(['usr', 'checkout', 'out']);
  });

  it('doubles commas in paths so QEMU reads them back unchanged', () => {
    const shares = guestShares({ outputDir: '/tmp/out,readonly=on' }, '/srv/a,b');
    const args = qemuArgs(config({ shares, channelSocket: '/tmp/x,y.sock' }));
    expect(valuesOf(args, '-virtfs').join(' ')).toContain('/srv/a,,b');
    expect(virtfs(args, 'checkout').get('path')).toBe('/srv/a,b');
    const out = virtfs(args, 'out');
    expect(out.get('path')).toBe('/tmp/out,readonly=on');
    expect(out.has('readonly')).toBe(false);
    const socket = parsedValuesOf(args, '-chardev').find((option) => option.get('') === 'socket');
    expect(socket?.get('path')).toBe('/tmp/x,y.sock');
  });
});

describe('qemuArgs: privileges', () => {
  it('runs QEMU under its seccomp sandbox, denying obsolete calls, new processes and resource control', () => {
    const sandbox = parseOption(valueOf(qemuArgs(base), '-sandbox'));
    expect(sandbox.get('')).toBe('on');
    for (const set of ['obsolete', 'spawn', 'resourcecontrol', 'elevateprivileges']) expect(sandbox.get(set)).toBe('deny');
    expect(qemuArgs(base)).not.toContain('-runas');
  });

  it('with a user to run as: -runas, and set*uid allowed for that one change (QEMU 7.2 filters before it drops root)', () => {
    const args = qemuArgs(config({ runAs: 'mmapkit-qemu' }));
    expect(valueOf(args, '-runas')).toBe('mmapkit-qemu');
    const sandbox = parseOption(valueOf(args, '-sandbox'));
    expect(sandbox.get('elevateprivileges')).toBe('allow');
    for (const set of ['obsolete', 'spawn', 'resourcecontrol']) expect(sandbox.get(set)).toBe('deny');
  });
});

describe('qemuArgs: the agent channel', () => {
  it('is absent without a channel socket', () => {
    const args = qemuArgs(base);
    expect(valuesOf(args, '-device')).toEqual([]);
    expect(parsedValuesOf(args, '-chardev').some((option) => option.get('') === 'socket')).toBe(false);
  });

  it('is a virtio-serial port with the name the guest opens, on a socket QEMU connects to', () => {
    const args = qemuArgs(config({ channelSocket: '/tmp/mmapkit-agent.sock' }));
    const socket = parsedValuesOf(args, '-chardev').find((option) => option.get('') === 'socket');
    expect(socket?.get('path')).toBe('/tmp/mmapkit-agent.sock');
    expect(socket?.has('server')).toBe(false); // the host listens; QEMU connects

    const devices = parsedValuesOf(args, '-device');
    const port = devices.find((device) => device.get('') === 'virtserialport');
    expect(port?.get('name')).toBe(CHANNEL_NAME);
    expect(port?.get('chardev')).toBe(socket?.get('id'));
    const controller = devices.find((device) => device.get('') === 'virtio-serial-pci');
    expect(port?.get('bus')).toBe(`${controller?.get('id') ?? '?'}.0`);
  });
});

describe('shellQuote', () => {
  /** What a POSIX shell makes of the quoted line: one argument per NUL. */
  function shellWords(line: string): string[] {
    const result = spawnSync('/bin/sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    return result.stdout.split('\0').slice(0, -1);
  }

  it('leaves plain words alone and quotes the rest', () => {
    expect(shellQuote(['qemu-system-x86_64', '-m', '1024M', 'max,la57=off', '/a/b.cpio'])).toBe(
      'qemu-system-x86_64 -m 1024M max,la57=off /a/b.cpio',
    );
    expect(shellQuote(['a b'])).toBe(`'a b'`);
    expect(shellQuote(['it\'s'])).toBe(`'it'\\''s'`);
    expect(shellQuote([''])).toBe(`''`);
  });

  it('round-trips a whole QEMU command line through /bin/sh', () => {
    const argv = [
      'qemu-system-x86_64',
      ...qemuArgs(config({ shares: guestShares({ outputDir: '/o' }, "/odd dir/it's,here"), channelSocket: '/tmp/$HOME`x`.sock' })),
      '',
      '*',
      'a\nb',
    ];
    expect(shellWords(shellQuote(argv))).toEqual(argv);
  });
});
