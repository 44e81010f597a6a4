/**
 * The one place that knows QEMU's command line.
 *
 * Choices measured on this project's machines (the figures are in the README, "How a run works"):
 * - the ELF vmlinux through the PVH entry with `-M q35 -nodefaults` boots in
 *   under 2 s under TCG, against 4+ s for the XZ bzImage;
 * - the default SeaBIOS, not qboot: qboot leaves MTRRs off and the guest then
 *   disables PAT, which changes how remap_pfn_range tracks memory types;
 * - `-cpu max,la57=off`: Node's first start in the guest takes 0.7 s instead
 *   of 1.6 s with the default qemu64 model, and la57=off keeps the 4-level
 *   page tables real x86-64 machines use;
 * - `-no-reboot` with `panic=-1` (and `oops=panic`) so that a crashed guest
 *   ends QEMU at once instead of hanging until a deadline.
 */

import type { GuestShare } from './guest-view.js';

export type Accelerator = 'tcg' | 'kvm';

/**
 * Devices a profile may ask for on top of the default VM (profile key
 * `qemuDevices`); the default VM has none of them, so its boot time does
 * not change. Each sits at a fixed PCI slot, so that a profile can name its
 * device by a fixed sysfs path.
 */
export const QEMU_DEVICES = ['ivshmem', 'bochs'] as const;
export type QemuDeviceName = (typeof QEMU_DEVICES)[number];

/** The PCI slot (bus 0) of each extra device: 0000:00:SLOT.0 in the guest. */
export const QEMU_DEVICE_SLOTS: Readonly<Record<QemuDeviceName, number>> = { ivshmem: 0x10, bochs: 0x11 };

/** ivshmem-plain's shared memory (BAR 2, resource2): a power of two, as QEMU requires. */
export const IVSHMEM_SIZE = 1024 * 1024;

/**
 * bochs-display's mode: EDID advertises it as preferred, so DRM fbdev
 * emulation sizes /dev/fb0 at 640x480x32 (1228800 bytes, 300 pages).
 */
export const BOCHS_RESOLUTION = { xres: 640, yres: 480 };

export type QemuDevice =
  /** QEMU's ivshmem-plain backed by `memFile`, a host file the guest writes through BAR 2; nothing else of the host becomes writable. */
  | { name: 'ivshmem'; memFile: string }
  /** bochs-display, driven by the guest's bochs DRM driver, whose fbdev emulation gives /dev/fb0. */
  | { name: 'bochs' };

export interface QemuConfig {
  accel: Accelerator;
  vmlinux: string;
  initramfs: string;
  memoryMiB: number;
  cpus: number;
  /** The host directories the guest sees (guest-view.ts); only the writable one (out) can be written. */
  shares: GuestShare[];
  /** The unprivileged user QEMU becomes once it has opened its files (qemu-user.ts); unset when not started by root. */
  runAs?: string;
  /** Unix socket the host listens on for the agent channel (agent mode only). */
  channelSocket?: string;
  /** Console on the user's terminal (vm shell) instead of a pipe. */
  interactive: boolean;
  /** mmapkit.* parameters for guest/init.sh. */
  guestParams: Record<string, string>;
  /**
   * TCG only: count instructions, each taking 2^icount ns of virtual time,
   * instead of letting the guest clock follow the host's (`-icount
   * shift=N,sleep=off`: an idle guest skips to its next timer rather than
   * sleeping in real time). Guest timings then count instructions, and
   * repeat from run to run.
   */
  icount?: number;
  /** Extra devices (profile key `qemuDevices`); none in the default VM. */
  devices?: QemuDevice[];
  /**
   * Let the kernel's framebuffer console take the VM's framebuffers over
   * (profile key `console`), as on a machine whose console is its display.
   * Off by default: a console draws into the memory under test.
   */
  framebufferConsole?: boolean;
  /**
   * Words added at the end of the kernel command line (`mmapkit bench --tool
   * --variant`, to measure a boot lever); none otherwise.
   */
  kernelArgs?: string[];
}

export const QEMU_BINARY = 'qemu-system-x86_64';

/** QEMU's option syntax splits on commas; a literal comma is written twice. */
const optionValue = (value: string): string => value.replace(/,/g, ',,');

/**
 * Debian zeroes every page allocation (INIT_ON_ALLOC_DEFAULT_ON=y), which hides
 * a driver that maps memory it never cleared (taxonomy #5).
 * page_poison=1 fills freed pages with 0xaa (include/linux/poison.h) and
 * overrides init_on_alloc (init_mem_debugging_and_hardening, 6.1); init_on_alloc=0 says so
 * explicitly, so an uncleared buffer shows stale bytes instead of zeroes.
 */
export const LEAK_REVEALING = ['init_on_alloc=0', 'page_poison=1'];

/** Keeps fbcon off every framebuffer of the VM (kernelCommandLine says how); profile key `console` lifts it. */
const NO_FRAMEBUFFER_CONSOLE = 'fbcon=map:9';

/**
 * Kernel parameters that shorten the boot and change nothing a test looks at,
 * each kept because `mmapkit bench --tool` measured it (docs/benchmarks.md,
 * "The tool itself"). cryptomgr.notests=1: Debian's kernels (6.1 and 6.12
 * alike: CONFIG_CRYPTO_MANAGER_DISABLE_TESTS unset) test every crypto
 * algorithm they register at boot (crypto_algapi_init runs crypto_start_tests,
 * 6.1), about 0.3 s of emulated work for code no test uses.
 */
export const BOOT_LEVERS = ['cryptomgr.notests=1'];

export function kernelCommandLine(config: QemuConfig): string {
  for (const [key, value] of Object.entries(config.guestParams)) {
    if (/\s/.test(value) || value === '') throw new Error(`mmapkit.${key} cannot be empty or contain spaces: '${value}'`);
  }
  const params = Object.entries(config.guestParams).map(([key, value]) => `mmapkit.${key}=${value}`);
  // Without this, fbcon takes over a framebuffer as soon as it registers (bochs's
  // fb0, or one a profile's own driver makes): do_fb_registered calls
  // do_fbcon_takeover, as Debian builds without FRAMEBUFFER_CONSOLE_DEFERRED_TAKEOVER
  // (6.1 and 6.12), and its cursor then blinks into the memory under test
  // (tools/test/region-record.ts). NO_FRAMEBUFFER_CONSOLE points every console at
  // fb9 (fb_console_setup fills con2fb_map_boot), a tenth framebuffer no run has,
  // so do_fb_registered finds no console for the ones there are; it also sets
  // map_override, so fbcon_select_primary does not move the consoles to the
  // primary one (read in 6.1; on 6.12 measured: fb0 stays zero). The console stays on ttyS0.
  const fbcon = config.framebufferConsole === true ? [] : [NO_FRAMEBUFFER_CONSOLE];
  // loglevel=5 keeps boot chatter (info, notice) off the slow emulated serial
  // line but shows warnings, errors and every oops and panic.
  const extra = config.kernelArgs ?? [];
  for (const word of extra) if (/\s/.test(word) || word === '') throw new Error(`a kernel argument cannot be empty or contain spaces: '${word}'`);
  return ['console=ttyS0', 'loglevel=5', 'panic=-1', 'oops=panic', ...LEAK_REVEALING, ...BOOT_LEVERS, ...fbcon, ...params, ...extra].join(' ');
}

export function qemuArgs(config: QemuConfig): string[] {
  const args = [
    '-machine', 'q35',
    '-accel', config.accel,
    '-cpu', 'max,la57=off',
    '-smp', String(config.cpus),
    '-m', `${config.memoryMiB}M`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-net', 'none',
    '-kernel', config.vmlinux,
    '-initrd', config.initramfs,
    '-append', kernelCommandLine(config),
    // ttyS0: kernel messages and init's output. signal=off so that Ctrl-C in
    // `vm shell` reaches the guest instead of killing QEMU.
    '-chardev', 'stdio,id=console,signal=off',
    '-serial', 'chardev:console',
    ...config.shares.flatMap((share) => ['-virtfs', virtfsValue(share)]),
    ...(config.runAs !== undefined ? ['-runas', config.runAs] : []),
    '-sandbox', sandbox(config),
  ];
  if (config.icount !== undefined) args.push('-icount', `shift=${config.icount},sleep=off`);
  if (config.channelSocket !== undefined) {
    // A virtio-serial port of its own, so the agent's messages never mix with
    // kernel messages on the console. QEMU connects to the host's socket.
    args.push(
      '-device', 'virtio-serial-pci,id=vser',
      '-chardev', `socket,id=agent,path=${optionValue(config.channelSocket)}`,
      '-device', 'virtserialport,bus=vser.0,chardev=agent,name=mmapkit.agent',
    );
  }
  for (const device of config.devices ?? []) args.push(...deviceArgs(device));
  return args;
}

/**
 * security_model=none: files are read and written with QEMU's own identity,
 * owner and mode as the host has them; the guest's chown and chmod are not
 * mapped onto anything. multidevs=remap keeps inode numbers unique across
 * the host file systems a share spans.
 */
function virtfsValue(share: GuestShare): string {
  const access = share.writable ? '' : ',readonly=on';
  return `local,path=${optionValue(share.path)},mount_tag=${share.tag},security_model=none${access},multidevs=remap`;
}

/**
 * QEMU's seccomp filter: no obsolete system calls, no new processes, no
 * changes to scheduling or resource limits, and no set*uid. Except with
 * -runas: QEMU 7.2 installs the filter while it parses its command line, and
 * -runas's setgid/setuid come after (os_setup_post), so elevateprivileges=deny
 * kills it with SIGSYS there (measured: "Bad system call" before the guest
 * starts). After -runas every uid and gid of the process is the user's and no
 * capability is left, so set*uid cannot raise them, while spawn=deny still
 * keeps it from executing a set-uid program.
 */
export function sandbox(config: Pick<QemuConfig, 'runAs'>): string {
  const privileges = config.runAs !== undefined ? 'allow' : 'deny';
  return `on,obsolete=deny,elevateprivileges=${privileges},spawn=deny,resourcecontrol=deny`;
}

/** The arguments for one extra device, at its fixed PCI slot. */
export function deviceArgs(device: QemuDevice): string[] {
  const addr = `addr=0x${QEMU_DEVICE_SLOTS[device.name].toString(16)}`;
  switch (device.name) {
    case 'ivshmem':
      // share=on: guest writes go to the file (MAP_SHARED), which the host can read afterwards.
      return [
        '-object', `memory-backend-file,id=ivshmem-mem,mem-path=${optionValue(device.memFile)},size=${IVSHMEM_SIZE},share=on`,
        '-device', `ivshmem-plain,memdev=ivshmem-mem,${addr}`,
      ];
    case 'bochs':
      return ['-device', `bochs-display,xres=${BOCHS_RESOLUTION.xres},yres=${BOCHS_RESOLUTION.yres},${addr}`];
  }
}

/** The sysfs directory of an extra device in the guest. */
export function guestPciDevice(name: QemuDeviceName): string {
  return `/sys/bus/pci/devices/0000:00:${QEMU_DEVICE_SLOTS[name].toString(16).padStart(2, '0')}.0`;
}

/** A command line a user can paste into a shell to boot the same VM. */
export function shellQuote(argv: string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
