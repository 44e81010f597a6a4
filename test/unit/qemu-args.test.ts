// QEMU's command line (tools/qemu/qemu-args.ts): the facts the design depends
// on, checked option by option rather than as one snapshot.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { kernelCommandLine, qemuArgs, type QemuConfig, shellQuote } from '../../tools/qemu/qemu-args.js';
import { guestShares } from '../../tools/qemu/guest-view.js';
import { CHANNEL_NAME } from '../../guest/protocol.js';

const base: QemuConfig = {
  accel: 'tcg',
  vmlinux: '/work/build/kernels/6.1.0-56-amd64/vmlinux',
  initramfs: '/work/build/kernels/6.1.0-56-amd64/initramfs-0123456789abcdef.cpio',
  memoryMiB: 1024,
  cpus: 2,
  shares: guestShares({ outputDir: '/work/build/runs/run-1/out' }, '/work'),
  interactive: false,
  guestParams: { mode: 'agent', uid: '1000' },
};

const config = (overrides: Partial<QemuConfig> = {}): QemuConfig => ({ ...base, ...overrides });

/** The values given to every occurrence of `option`. */
function valuesOf(args: string[], option: string): string[] {
  const values: string[] = [];
  args.forEach((arg, index) => {
    if (arg === option) values.push(args[index + 1] ?? '');
  });
  return values;
}

/** The one value of an option that must appear exactly once. */
function valueOf(args: string[], option: string): string {
  const values = valuesOf(args, option);
  expect(values, `${option} appears once`).toHaveLength(1);
  return values[0] ?? '';
}

/**
 * Reads a QEMU option string the way QEMU does: a single comma separates,
 * a doubled comma is a literal comma. The first bare word gets key ''.
 */
function parseOption(text: string): Map<string, string> {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ',' && text[i + 1] === ',') {
      current += ',';
      i++;
    } else if (text[i] === ',') {
      parts.push(current);
      current = '';
    } else {
      current += text[i];
    }
  }
  parts.push(current);
  return new Map(
    parts.map((part) => {
      const equals = part.indexOf('=');
      return equals < 0 ? ['', part] : [part.slice(0, equals), part.slice(equals + 1)];
    }),
  );
}

/** The parsed -virtfs option with this mount tag. */
function virtfs(args: string[], tag: string): Map<string, string> {
  const matching = valuesOf(args, '-virtfs').map(parseOption).filter((option) => option.get('mount_tag') === tag);
  expect(matching, `one virtfs with mount_tag=${tag}`).toHaveLength(1);
  return matching[0] ?? new Map();
}

describe('qemuArgs: the machine', () => {
  const args = qemuArgs(base);

  it('is a q35 machine with no default devices that does not reboot', () => {
    expect(valueOf(args, '-machine')).toBe('q35');
    expect(args).toContain('-nodefaults');
    expect(args).toContain('-no-user-config');
    expect(args).toContain('-no-reboot');
    expect(valueOf(args, '-net')).toBe('none');
    expect(valueOf(args, '-display')).toBe('none');
  });

  it('uses the accelerator from the config', () => {
    expect(valueOf(qemuArgs(config({ accel: 'tcg' })), '-accel')).toBe('tcg');
    expect(valueOf(qemuArgs(config({ accel: 'kvm' })), '-accel')).toBe('kvm');
  });

  it('uses -cpu max with 5-level paging off', () => {
    expect(valueOf(args, '-cpu')).toBe('max,la57=off');
  });

  it('takes memory and CPUs from the config', () => {
    const custom = qemuArgs(config({ memoryMiB: 768, cpus: 3 }));
    expect(valueOf(custom, '-m')).toBe('768M');
    expect(valueOf(custom, '-smp')).toBe('3');
  });

  it('boots the vmlinux directly with the initramfs', () => {
    expect(valueOf(args, '-kernel')).toBe(base.vmlinux);
    expect(valueOf(args, '-initrd')).toBe(base.initramfs);
  });

  it('keeps the default firmware (SeaBIOS): no -bios, no qboot', () => {
    expect(args).not.toContain('-bios');
    expect(args.join(' ')).not.toMatch(/qboot/);
  });

  it('puts the console on ttyS0 through a stdio chardev that ignores Ctrl-C', () => {
    const chardev = parseOption(valuesOf(args, '-chardev').find((value) => value.startsWith('stdio')) ?? '');
    expect(chardev.get('')).toBe('stdio');
    expect(chardev.get('signal')).toBe('off');
    expect(valueOf(args, '-serial')).toBe(`chardev:${chardev.get('id') ?? '?'}`);
  });
});

describe('qemuArgs: the kernel command line', () => {
  const words = valueOf(qemuArgs(base), '-append').split(' ');

  it('is kernelCommandLine(config)', () => {
    expect(valueOf(qemuArgs(base), '-append')).toBe(kernelCommandLine(base));
  });

  it('sends the console to ttyS0 and turns every oops and panic into an exit', () => {
    expect(words).toContain('console=ttyS0');
    expect(words).toContain('panic=-1');
    expect(words).toContain('oops=panic');
  });

  it('boots so that uncleared driver memory shows stale bytes, not zeroes (catalogue bug #5)', () => {
    expect(words).toContain('init_on_alloc=0');
    expect(words).toContain('page_poison=1');
  });

  it('passes the guest parameters as mmapkit.<key>=<value>', () => {
    expect(words).toContain('mmapkit.mode=agent');
    expect(words).toContain('mmapkit.uid=1000');
    expect(kernelCommandLine(config({ guestParams: { mode: 'shell' } })).split(' ')).toContain('mmapkit.mode=shell');
  });

  it('refuses a guest parameter with whitespace or no value', () => {
    expect(() => kernelCommandLine(config({ guestParams: { cmd: 'echo hi' } }))).toThrow(/mmapkit\.cmd/);
    expect(() => kernelCommandLine(config({ guestParams: { cmd: 'a\tb' } }))).toThrow();
    expect(() => kernelCommandLine(config({ guestParams: { cmd: '' } }))).toThrow();
    expect(() => qemuArgs(config({ guestParams: { mode: 'agent now' } }))).toThrow();
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
    const socket = valuesOf(args, '-chardev').map(parseOption).find((option) => option.get('') === 'socket');
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
    expect(args.join(' ')).not.toContain('virtserialport');
    expect(args.join(' ')).not.toContain('virtio-serial');
    expect(valuesOf(args, '-chardev').some((value) => value.startsWith('socket'))).toBe(false);
  });

  it('is a virtio-serial port named mmapkit.agent on a socket chardev', () => {
    const args = qemuArgs(config({ channelSocket: '/tmp/mmapkit-agent.sock' }));
    const socket = valuesOf(args, '-chardev').map(parseOption).find((option) => option.get('') === 'socket');
    expect(socket?.get('path')).toBe('/tmp/mmapkit-agent.sock');
    expect(socket?.has('server')).toBe(false); // the host listens; QEMU connects

    const devices = valuesOf(args, '-device').map(parseOption);
    const port = devices.find((device) => device.get('') === 'virtserialport');
    expect(port?.get('name')).toBe('mmapkit.agent');
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
