// The extra devices a profile can ask for (profile key qemuDevices), read back
// from QEMU's command line: each at its own fixed slot, which guestPciDevice
// names; what it is backed by; and that the default VM gets none of it.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  BOCHS_RESOLUTION,
  IVSHMEM_SIZE,
  QEMU_BINARY,
  QEMU_DEVICES,
  QEMU_DEVICE_SLOTS,
  type QemuConfig,
  type QemuDevice,
  type QemuDeviceName,
  deviceArgs,
  guestPciDevice,
  kernelCommandLine,
  qemuArgs,
} from '../../tools/qemu/qemu-args.js';
import { kernelParams, parsedValuesOf, valuesOf } from './qemu-command-line.js';

const base: QemuConfig = {
  accel: 'tcg',
  vmlinux: '/work/build/kernels/some-release/vmlinux',
  initramfs: '/work/build/kernels/some-release/initramfs.cpio',
  memoryMiB: 1024,
  cpus: 2,
  shares: [{ tag: 'out', path: '/work/build/runs/run-1/out', writable: true }],
  interactive: false,
  guestParams: { mode: 'agent' },
};
const MEM = '/work/build/runs/run-1/ivshmem.mem';

/** Each device as a profile run would ask for it. */
const DEVICES: Record<QemuDeviceName, QemuDevice> = { ivshmem: { name: 'ivshmem', memFile: MEM }, bochs: { name: 'bochs' } };

/** The one -device of `args` that is placed on the PCI bus (has addr=). */
function placedDevice(args: string[]): Map<string, string> {
  const placed = parsedValuesOf(args, '-device').filter((device) => device.has('addr'));
  expect(placed).toHaveLength(1);
  return placed[0] ?? new Map();
}

/** The PCI address a sysfs device directory names: domain:bus:slot.function, as numbers. */
function sysfsAddress(dir: string): number[] {
  const match = /^\/sys\/bus\/pci\/devices\/([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(dir);
  expect(match, dir).not.toBeNull();
  return (match ?? []).slice(1).map((part) => Number.parseInt(part, 16));
}

describe('extra QEMU devices', () => {
  it('the default VM has none of them', () => {
    const args = qemuArgs(base);
    expect(valuesOf(args, '-device')).toEqual([]);
    expect(valuesOf(args, '-object')).toEqual([]);
    expect(qemuArgs({ ...base, devices: [] })).toEqual(args);
  });

  it.each(QEMU_DEVICES)('%s sits at its own slot on bus 0, the one guestPciDevice names', (name) => {
    const device = placedDevice(deviceArgs(DEVICES[name]));
    expect(Number(device.get('addr'))).toBe(QEMU_DEVICE_SLOTS[name]);
    expect(sysfsAddress(guestPciDevice(name))).toEqual([0, 0, QEMU_DEVICE_SLOTS[name], 0]);
  });

  it('no two devices share a slot', () => {
    const slots = QEMU_DEVICES.map((name) => QEMU_DEVICE_SLOTS[name]);
    expect(new Set(slots).size).toBe(slots.length);
  });

  it('ivshmem: its BAR is IVSHMEM_SIZE of the given host file, shared so the host sees the guest\'s writes', () => {
    const args = deviceArgs(DEVICES.ivshmem);
    const [backend] = parsedValuesOf(args, '-object');
    expect(backend?.get('mem-path')).toBe(MEM);
    expect(Number(backend?.get('size'))).toBe(IVSHMEM_SIZE);
    expect(backend?.get('share')).toBe('on');
    expect(placedDevice(args).get('memdev')).toBe(backend?.get('id'));
    expect(IVSHMEM_SIZE & (IVSHMEM_SIZE - 1)).toBe(0); // QEMU wants a power of two
  });

  it('ivshmem: a memory file path with commas is read back unchanged', () => {
    const [backend] = parsedValuesOf(deviceArgs({ name: 'ivshmem', memFile: '/a,b/m,share=off' }), '-object');
    expect(backend?.get('mem-path')).toBe('/a,b/m,share=off');
    expect(backend?.get('share')).toBe('on');
  });

  it('bochs: the mode is BOCHS_RESOLUTION', () => {
    const display = placedDevice(deviceArgs(DEVICES.bochs));
    expect([Number(display.get('xres')), Number(display.get('yres'))]).toEqual([BOCHS_RESOLUTION.xres, BOCHS_RESOLUTION.yres]);
  });

  it.each([
    ['the default VM', base],
    ['a VM with bochs', { ...base, devices: [DEVICES.bochs] }],
  ])('%s: no console maps to fb0 or fb1 (bochs\'s, or one a profile\'s driver makes)', (_what, config) => {
    // fbcon=map:<digits>: console N goes to framebuffer digit N (cycled).
    const map = /^map:(\d+)$/.exec(kernelParams(kernelCommandLine(config)).get('fbcon') ?? '')?.[1];
    expect(map).toBeDefined();
    expect(map).not.toMatch(/[01]/);
  });

  it('bochs with the framebuffer console asked for (profile key console): no fbcon parameter, so fbcon takes fb0 over', () => {
    const params = kernelParams(kernelCommandLine({ ...base, devices: [DEVICES.bochs], framebufferConsole: true }));
    expect(params.has('fbcon')).toBe(false);
    expect(params.get('console')).toBe('ttyS0');
  });

  it('each device asked for comes once, after the default arguments', () => {
    // ivshmem alone leaves the default arguments as they are.
    expect(qemuArgs({ ...base, devices: [DEVICES.ivshmem] })).toEqual([...qemuArgs(base), ...deviceArgs(DEVICES.ivshmem)]);
    const both = qemuArgs({ ...base, devices: QEMU_DEVICES.map((name) => DEVICES[name]) });
    const placed = parsedValuesOf(both, '-device').filter((device) => device.has('addr'));
    expect(placed.map((device) => Number(device.get('addr')))).toEqual(QEMU_DEVICES.map((name) => QEMU_DEVICE_SLOTS[name]));
  });

  it("this host's QEMU knows every device and property we pass", () => {
    for (const name of QEMU_DEVICES) {
      for (const device of parsedValuesOf(deviceArgs(DEVICES[name]), '-device')) {
        const driver = device.get('') ?? '';
        const help = spawnSync(QEMU_BINARY, ['-device', `${driver},help`], { encoding: 'utf8' });
        expect(help.status, help.stderr).toBe(0);
        for (const property of [...device.keys()].filter((key) => key !== '')) expect(help.stdout, `${driver} ${property}`).toContain(`${property}=`);
      }
    }
  });
});
