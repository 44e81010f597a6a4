// The extra devices a profile can ask for (profile key qemuDevices): what
// they add to QEMU's command line, and that the default VM gets none of it.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  BOCHS_RESOLUTION,
  IVSHMEM_SIZE,
  QEMU_BINARY,
  QEMU_DEVICES,
  type QemuConfig,
  deviceArgs,
  guestPciDevice,
  kernelCommandLine,
  qemuArgs,
} from '../../tools/qemu/qemu-args.js';

const base: QemuConfig = {
  accel: 'tcg',
  vmlinux: '/work/build/kernels/6.1.0-56-amd64/vmlinux',
  initramfs: '/work/build/kernels/6.1.0-56-amd64/initramfs.cpio',
  memoryMiB: 1024,
  cpus: 2,
  shares: [{ tag: 'out', path: '/work/build/runs/run-1/out', writable: true }],
  interactive: false,
  guestParams: { mode: 'agent' },
};
const MEM = '/work/build/runs/run-1/ivshmem.mem';

describe('extra QEMU devices', () => {
  it('the default VM has none of them, and no fbcon parameter', () => {
    const args = qemuArgs(base).join(' ');
    expect(args).not.toMatch(/ivshmem|bochs|memory-backend/);
    expect(kernelCommandLine(base)).not.toContain('fbcon');
    expect(qemuArgs({ ...base, devices: [] })).toEqual(qemuArgs(base));
  });

  it('ivshmem: a shared memory-backend-file of IVSHMEM_SIZE at the given host file, ivshmem-plain at slot 0x10', () => {
    const args = deviceArgs({ name: 'ivshmem', memFile: MEM });
    expect(args).toEqual([
      '-object', `memory-backend-file,id=ivshmem-mem,mem-path=${MEM},size=${IVSHMEM_SIZE},share=on`,
      '-device', 'ivshmem-plain,memdev=ivshmem-mem,addr=0x10',
    ]);
    expect(IVSHMEM_SIZE & (IVSHMEM_SIZE - 1)).toBe(0); // QEMU wants a power of two
    expect(guestPciDevice('ivshmem')).toBe('/sys/bus/pci/devices/0000:00:10.0');
  });

  it('a comma in the memory file path is doubled, as QEMU reads options', () => {
    expect(deviceArgs({ name: 'ivshmem', memFile: '/a,b/m' })[1]).toContain('mem-path=/a,,b/m,');
  });

  it('bochs: bochs-display at slot 0x11 with a fixed mode, and fbcon kept off fb0', () => {
    expect(deviceArgs({ name: 'bochs' })).toEqual(['-device', `bochs-display,xres=${BOCHS_RESOLUTION.xres},yres=${BOCHS_RESOLUTION.yres},addr=0x11`]);
    expect(guestPciDevice('bochs')).toBe('/sys/bus/pci/devices/0000:00:11.0');
    const config = { ...base, devices: [{ name: 'bochs' as const }] };
    expect(kernelCommandLine(config).split(' ')).toContain('fbcon=map:1');
    expect(qemuArgs(config).slice(-2)).toEqual(deviceArgs({ name: 'bochs' }));
  });

  it('both devices together, each once, after the default arguments', () => {
    // ivshmem alone leaves the default arguments as they are (bochs adds fbcon=map:1 to -append).
    expect(qemuArgs({ ...base, devices: [{ name: 'ivshmem', memFile: MEM }] })).toEqual([...qemuArgs(base), ...deviceArgs({ name: 'ivshmem', memFile: MEM })]);
    const args = qemuArgs({ ...base, devices: [{ name: 'ivshmem', memFile: MEM }, { name: 'bochs' }] });
    expect(args.length).toBe(qemuArgs(base).length + 6);
    expect(args.filter((arg) => arg.startsWith('ivshmem-plain'))).toHaveLength(1);
    expect(args.filter((arg) => arg.startsWith('bochs-display'))).toHaveLength(1);
    expect(QEMU_DEVICES).toEqual(['ivshmem', 'bochs']);
  });

  it("this host's QEMU knows the devices and their properties", () => {
    for (const [device, properties] of [
      ['ivshmem-plain', ['memdev', 'addr']],
      ['bochs-display', ['xres', 'yres', 'addr']],
    ] as const) {
      const help = spawnSync(QEMU_BINARY, ['-device', `${device},help`], { encoding: 'utf8' });
      expect(help.status, help.stderr).toBe(0);
      for (const property of properties) expect(help.stdout).toContain(`${property}=`);
    }
  });
});
