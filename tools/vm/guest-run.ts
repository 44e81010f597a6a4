/**
 * The common start of every VM command: boot the guest, load the module
 * under test, and stop everything again. Shared by `vm run`, `test` and the
 * conformance suite's vitest global setup.
 */
import type { GuestKernel } from '../kernel.js';
import { moduleObject } from '../paths.js';
import type { QemuDeviceName } from './qemu-args.js';
import { type AccelChoice, type BootOptions, VmSession } from './session.js';

export interface GuestRunOptions {
  kernel: GuestKernel;
  accel: AccelChoice;
  /** Load the reference module (default true). */
  loadModule?: boolean;
  keep?: boolean;
  showConsole?: boolean;
  bootTimeoutS?: number;
  runTimeoutS?: number;
  /** Guest RAM (default: BootOptions' 1024 MiB). */
  memoryMiB?: number;
  /** TCG instruction counting (BootOptions.icount). */
  icount?: number;
  /** Extra devices the profiles under test need (BootOptions.qemuDevices). */
  qemuDevices?: QemuDeviceName[];
  log: (line: string) => void;
}

export async function startGuest(options: GuestRunOptions): Promise<VmSession> {
  const boot: BootOptions = { ...options, mode: 'agent' };
  for (const key of ['bootTimeoutS', 'runTimeoutS', 'memoryMiB', 'icount', 'qemuDevices'] as const) if (boot[key] === undefined) delete boot[key];
  const session = await VmSession.boot(boot);
  const seconds = ((session.bootMs ?? 0) / 1000).toFixed(1);
  options.log(
    `booted ${session.ready?.kernel ?? options.kernel.version} (${session.accel}, clocksource ${session.ready?.clocksource ?? '?'}) ` +
      `in ${seconds} s; guest agent ready at ${session.ready?.uptime.toFixed(1) ?? '?'} s guest uptime`,
  );
  if (session.ivshmemFile !== undefined) options.log(`ivshmem memory file: ${session.ivshmemFile}`);
  if (options.loadModule !== false) {
    try {
      await session.guest.run(['insmod', moduleObject(options.kernel.version)]);
    } catch (error) {
      await session.stop();
      throw error;
    }
  }
  return session;
}
