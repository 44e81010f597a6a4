/**
 * The one place that knows QEMU's command line.
 *
 * Choices measured on this project's machines (shared/reference/boot-measurements.md):
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

export type Accelerator = 'tcg' | 'kvm';

export interface QemuConfig {
  accel: Accelerator;
  vmlinux: string;
  initramfs: string;
  memoryMiB: number;
  cpus: number;
  /** The host's root, shared read-only. */
  hostRoot: string;
  /** The only host directory the guest may write. */
  outputDir: string;
  /** Unix socket the host listens on for the agent channel (agent mode only). */
  channelSocket?: string;
  /** Console on the user's terminal (vm shell) instead of a pipe. */
  interactive: boolean;
  /** mmapkit.* parameters for vm/init.sh. */
  guestParams: Record<string, string>;
  /**
   * TCG only: count instructions, each taking 2^icount ns of virtual time,
   * instead of letting the guest clock follow the host's (`-icount
   * shift=N,sleep=off`: an idle guest skips to its next timer rather than
   * sleeping in real time). Guest timings then count instructions, and
   * repeat from run to run.
   */
  icount?: number;
}

export const QEMU_BINARY = 'qemu-system-x86_64';

/** QEMU's option syntax splits on commas; a literal comma is written twice. */
const optionValue = (value: string): string => value.replace(/,/g, ',,');

export function kernelCommandLine(config: QemuConfig): string {
  for (const [key, value] of Object.entries(config.guestParams)) {
    if (/\s/.test(value) || value === '') throw new Error(`mmapkit.${key} cannot be empty or contain spaces: '${value}'`);
  }
  const params = Object.entries(config.guestParams).map(([key, value]) => `mmapkit.${key}=${value}`);
  // loglevel=5 keeps boot chatter (info, notice) off the slow emulated serial
  // line but shows warnings, errors and every oops and panic.
  return ['console=ttyS0', 'loglevel=5', 'panic=-1', 'oops=panic', ...params].join(' ');
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
    '-virtfs', `local,path=${optionValue(config.hostRoot)},mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap`,
    '-virtfs', `local,path=${optionValue(config.outputDir)},mount_tag=out,security_model=none,multidevs=remap`,
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
  return args;
}

/** A command line a user can paste into a shell to boot the same VM. */
export function shellQuote(argv: string[]): string {
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
