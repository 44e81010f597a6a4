// Profile keys for real in-kernel drivers: qemuDevices, console, mmio, and a module
// named by its bare name (modprobe from the guest kernel's own tree).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode, SetupError, UserError } from '../../tools/exit-codes.js';
import { DEFAULT_SERIES, newestOfSeries } from '../../tools/kernel.js';
import { REPO_ROOT } from '../../tools/paths.js';
import { checkModule, isModuleName, loadProfile, parseProfile, profilesVm, resolveModule } from '../../tools/profile.js';
import { IVSHMEM_SIZE, guestPciDevice } from '../../tools/qemu/qemu-args.js';

// Checked against this machine's modules: the release is discovered, never written down.
const KERNEL = newestOfSeries(DEFAULT_SERIES);
const minimal = { name: 'x', device: '/dev/x', size: 8192 };
const parse = (json: unknown) => parseProfile(json, '/p/my.json', KERNEL);

describe('qemuDevices, console and mmio', () => {
  it('default to none and false', () => {
    expect(parse(minimal)).toMatchObject({ qemuDevices: [], console: false, mmio: false });
  });

  it('accept known device names and a boolean', () => {
    expect(parse({ ...minimal, qemuDevices: ['ivshmem', 'bochs'], mmio: true })).toMatchObject({ qemuDevices: ['ivshmem', 'bochs'], mmio: true });
  });

  it.each([
    [{ qemuDevices: 'ivshmem' }, /"qemuDevices" must be a list of distinct names out of "ivshmem", "bochs"/],
    [{ qemuDevices: ['virtio-gpu'] }, /"qemuDevices" must be a list/],
    [{ qemuDevices: ['bochs', 'bochs'] }, /"qemuDevices" must be a list of distinct/],
    [{ mmio: 'yes' }, /"mmio" must be true or false/],
    [{ console: 'fbcon' }, /"console" must be true or false/],
  ])('refuses %j', (extra, pattern) => {
    expect(() => parse({ ...minimal, ...extra })).toThrow(UserError);
    expect(() => parse({ ...minimal, ...extra })).toThrow(pattern);
  });
});

describe('the VM a run\'s profiles share (profilesVm)', () => {
  it('the default VM for profiles that ask for nothing', () => {
    expect(profilesVm([parse(minimal), parse(minimal)])).toEqual({});
  });

  it('the union of their devices, and a framebuffer console when any one asks for it', () => {
    const fb = parse({ ...minimal, qemuDevices: ['bochs'] });
    expect(profilesVm([fb, parse({ ...minimal, qemuDevices: ['ivshmem', 'bochs'] })])).toEqual({ qemuDevices: ['bochs', 'ivshmem'] });
    expect(profilesVm([fb, parse({ ...minimal, qemuDevices: ['bochs'], console: true })])).toEqual({ qemuDevices: ['bochs'], framebufferConsole: true });
  });
});

describe('a module by name', () => {
  it('a bare name stays a name; anything with a slash or .ko is a file', () => {
    expect(isModuleName('bochs')).toBe(true);
    expect(isModuleName('drm_kms_helper')).toBe(true);
    expect(isModuleName('bochs.ko')).toBe(false);
    expect(isModuleName('./bochs')).toBe(false);
    expect(resolveModule('bochs', '/p/my.json', KERNEL)).toBe('bochs');
    expect(parse({ ...minimal, module: 'bochs' }).module).toBe('bochs');
  });

  it("is checked against the guest kernel's own modules", () => {
    expect(() => checkModule(parse({ ...minimal, module: 'bochs' }), KERNEL)).not.toThrow();
    expect(() => checkModule(parse({ ...minimal, module: 'no_such_module_here' }), KERNEL)).toThrow(
      `"module" no_such_module_here is not a module of the guest kernel ${KERNEL}`,
    );
  });
});

describe('the shipped real-driver profiles', () => {
  const real = (name: string) => loadProfile(path.join(REPO_ROOT, 'test', 'profiles', 'real', name), KERNEL);

  it('ivshmem: BAR 2 of the device at its fixed slot, the whole shared memory, MMIO', () => {
    const profile = real('ivshmem.json');
    expect(profile.device).toBe(`${guestPciDevice('ivshmem')}/resource2`);
    expect(profile).toMatchObject({ size: IVSHMEM_SIZE, qemuDevices: ['ivshmem'], mmio: true, module: undefined });
  });

  it('fb0-bochs: /dev/fb0, the bochs module, the bochs device', () => {
    const profile = real('fb0-bochs.json');
    expect(profile).toMatchObject({ device: '/dev/fb0', module: 'bochs', qemuDevices: ['bochs'], mmio: false });
    expect(() => checkModule(profile, KERNEL)).not.toThrow();
  });
});

describe('minSeries: the oldest kernel series a profile applies to', () => {
  it('is absent by default, and a profile for a newer series is refused with exit 3, in one line, before any boot', () => {
    expect(parse(minimal).minSeries).toBeUndefined();
    expect(parseProfile({ ...minimal, minSeries: '6.12' }, '/p/my.json', '6.12.117+deb12-amd64').minSeries).toBe('6.12');
    expect(parseProfile({ ...minimal, minSeries: '6.1' }, '/p/my.json', '6.12.117+deb12-amd64').minSeries).toBe('6.1');
    let caught: unknown;
    try {
      parseProfile({ ...minimal, minSeries: '6.12' }, '/p/my.json', '6.1.0-57-amd64');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SetupError);
    expect((caught as SetupError).exitCode).toBe(ExitCode.SETUP);
    expect((caught as SetupError).message).toBe('my.json: needs kernel series >= 6.12 (its driver is not in 6.1.0-57-amd64): run it with --kernel 6.12');
  });

  it.each([['6'], ['6.12.1'], [6.12], ['']])('refuses %j', (value) => {
    expect(() => parse({ ...minimal, minSeries: value })).toThrow(/"minSeries" must be a kernel series like "6.12"/);
  });

  it('udmabuf and dma-heap apply from 6.12 on (Debian builds neither into 6.1)', () => {
    for (const name of ['udmabuf.json', 'dma-heap.json']) {
      const file = path.join(REPO_ROOT, 'test', 'profiles', 'real', name);
      expect(() => loadProfile(file, '6.1.0-57-amd64')).toThrow(SetupError);
      expect(loadProfile(file, '6.12.117+deb12-amd64').minSeries).toBe('6.12');
    }
  });
});

describe('protNone: whether the driver makes a PROT_NONE mapping', () => {
  it('defaults to "mapped"; "rejected" is kept; anything else is refused', () => {
    expect(parse(minimal).protNone).toBe('mapped');
    expect(parse({ ...minimal, protNone: 'rejected' }).protNone).toBe('rejected');
    expect(() => parse({ ...minimal, protNone: 'refused' })).toThrow(/"protNone" must be "mapped" or "rejected", not "refused"/);
  });
});
