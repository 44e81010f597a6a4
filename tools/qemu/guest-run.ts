/**
 * The common start of every VM command: boot the guest, load the module
 * under test, and stop everything again. Shared by `vm run`, `test` and the
 * conformance suite's vitest global setup.
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GuestKernel } from '../kernel.js';
import { moduleObject } from '../paths.js';
import type { AccelChoice } from './accel.js';
import { loadModule } from './guest-modules.js';
import { DEADLINE_FLOORS, caseTimeoutMs } from './deadlines.js';
import { GuestSupervisor } from './guest-supervisor.js';
import type { SessionEnd } from './outcome.js';
import type { QemuDeviceName } from './qemu-args.js';
import { startRelay } from './relay.js';
import { VmSession } from './session.js';

export interface GuestRunOptions {
  kernel: GuestKernel;
  accel: AccelChoice;
  /** Load the reference module (default true). */
  loadModule?: boolean;
  keep?: boolean;
  showConsole?: boolean;
  bootTimeoutS?: number;
  runTimeoutS?: number;
  /** Deadline for one request to the guest: past it the guest is presumed hung (default: deadlines.ts). */
  requestTimeoutS?: number;
  /** The request deadline's floor when none is given (BootOptions.requestFloorS). */
  requestFloorS?: number;
  /** The guest's vCPUs (default: session.ts guestCpus). */
  cpus?: number;
  /** Guest RAM (default: session.ts DEFAULTS, 512 MiB). */
  memoryMiB?: number;
  /** TCG instruction counting (BootOptions.icount). */
  icount?: number;
  /** Extra devices the profiles under test need (BootOptions.qemuDevices). */
  qemuDevices?: QemuDeviceName[];
  /** fbcon may take the devices' framebuffers over (BootOptions.framebufferConsole). */
  framebufferConsole?: boolean;
  /** Host files the run names outside the checkout and /usr (BootOptions.hostFiles). */
  hostFiles?: string[];
  /** Words added to the kernel command line (BootOptions.kernelArgs). */
  kernelArgs?: string[];
  /** Restore a saved guest when there is one (BootOptions.snapshot). */
  snapshot?: boolean;
  /** The module's build, when it runs while the guest boots: awaited before the module is loaded, its failure the run's. */
  moduleBuilt?: Promise<void>;
  log: (line: string) => void;
}

export async function startGuest(options: GuestRunOptions): Promise<VmSession> {
  const { moduleBuilt, ...given } = options;
  // An option left undefined keeps its default: VmSession.boot drops undefined ones.
  const session = await VmSession.boot({ ...given, mode: 'agent' });
  try {
    await moduleBuilt;
  } catch (error) {
    await session.stop();
    throw error;
  }
  const seconds = ((session.bootMs ?? 0) / 1000).toFixed(1);
  options.log(
    `${session.restoredFrom !== undefined ? 'restored' : 'booted'} ${session.ready?.kernel ?? options.kernel.version} (${session.accel}, clocksource ${session.ready?.clocksource ?? '?'}) ` +
      `in ${seconds} s; guest agent ready at ${session.ready?.uptime.toFixed(1) ?? '?'} s guest uptime`,
  );
  if (session.ivshmemFile !== undefined) options.log(`ivshmem memory file: ${session.ivshmemFile}`);
  if (options.loadModule !== false) {
    try {
      await loadModule(session.guest, moduleObject(options.kernel.version));
    } catch (error) {
      await session.stop();
      throw error;
    }
  }
  return session;
}

/** A guest the test workers share through a relay socket, replaced whenever it crashes. */
export interface SharedGuest {
  supervisor: GuestSupervisor;
  /** The relay's unix socket (tools/qemu/relay.ts). */
  socket: string;
  /** How long a case using this guest may take: some request deadlines of the first guest (deadlines.ts caseTimeoutMs). */
  caseTimeoutMs: number;
  /** Lets the connections that wait at the relay (with `held`) reach the guest. */
  admit(): void;
  /** Closes the relay (and every connection still held there) and stops the live guest; the last session's end. */
  close(): Promise<SessionEnd>;
}

/** `held`: connections wait at the relay until admit() (relay.ts startRelay). */
export async function shareGuest(options: GuestRunOptions, held = false): Promise<SharedGuest> {
  const supervisor = await GuestSupervisor.start(() => startGuest(options), options.log);
  const socket = path.join(os.tmpdir(), `mmapkit-relay-${process.pid}-${Date.now().toString(36)}.sock`);
  // An interrupted run (Ctrl-C, SIGTERM: tools/cli/main.ts exits) leaves no socket behind either.
  const removeSocket = (): void => rmSync(socket, { force: true });
  process.once('exit', removeSocket);
  let admit = (): void => undefined;
  let refuse = (_reason: Error): void => undefined;
  const admitted = held
    ? new Promise<void>((resolve, reject) => {
        admit = resolve;
        refuse = reject;
      })
    : Promise.resolve();
  admitted.catch(() => undefined);
  let relay;
  try {
    relay = await startRelay(socket, supervisor, admitted);
  } catch (error) {
    await supervisor.stop();
    throw error;
  }
  const [first] = supervisor.sessions;
  return {
    supervisor,
    socket,
    caseTimeoutMs: caseTimeoutMs(first?.requestTimeoutS ?? DEADLINE_FLOORS.conformanceRequestS),
    admit,
    async close() {
      refuse(new Error('the run closed its guest'));
      relay.close();
      removeSocket();
      process.off('exit', removeSocket);
      return supervisor.stop();
    },
  };
}
