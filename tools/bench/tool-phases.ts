/**
 * The phases of one boot, from QEMU's start to the guest agent's ready
 * message, read from the guest's own timestamps: the kernel's record of
 * starting /init, the "mmapkit-init: at NAME UPTIME" records guest/init.sh
 * writes to the kernel log, and the agent's ready message (its uptime).
 * Pure functions over the kernel log's lines (as dmesg prints them), so they
 * can be tested on recorded logs.
 *
 * Two guest clocks are involved: kernel log records carry the printk clock,
 * the ready message and the markers' text carry /proc/uptime's (to 10 ms).
 * Each marker holds both, so their difference puts every timestamp on the
 * printk clock. Only the first phase, QEMU's start to the printk clock's
 * zero (QEMU's own set-up, the firmware, the kernel's entry until its clock
 * runs), needs the host: the host's boot time less the ready message's time.
 */

/** init.sh's markers, in the order it writes them (guest/init.sh, `mark`); `resume` only with the hold point. */
export const INIT_MARKERS = ['init', 'modules', 'resume', 'root'] as const;
export type InitMarker = (typeof INIT_MARKERS)[number];
const OPTIONAL_MARKERS: readonly InitMarker[] = ['resume'];

/**
 * The phases, in boot order; their sum is the host's boot time. A guest
 * restored from a saved state (tools/qemu/snapshot.ts) has no kernel or
 * init phases of its own: everything from QEMU's start to the guest's go is
 * its `restore` phase, and the phases before are 0.
 */
export const BOOT_PHASES = ['qemu', 'kernel', 'init', 'modules', 'restore', 'mounts', 'agent'] as const;
export type BootPhase = (typeof BOOT_PHASES)[number];

export const PHASE_TITLES: Readonly<Record<BootPhase, string>> = {
  qemu: 'QEMU start to guest clock zero (QEMU, firmware, kernel entry)',
  kernel: 'kernel to /init',
  init: '/init: the shell, /proc /sys /dev',
  modules: 'virtio and 9p modules (insmod)',
  restore: 'restore of the saved guest to its go (booted: the go, and saving the state once)',
  mounts: '9p shares, tmpfs root, mounts',
  agent: 'node start to agent ready',
};

/** The kernel's record of starting init (run_init_process, 6.1 and 6.12). */
const RUN_INIT = /^Run \/init as init process$/;
const MARKER = /^mmapkit-init: at (\w+) (\d+\.\d+)$/;
const LOG_LINE = /^\[\s*(\d+\.\d+)\]\s?(.*)$/;

/** "[    1.234567] text" -> { at: 1.234567, text }; undefined for a continuation line or anything else. */
export function parseLogLine(line: string): { at: number; text: string } | undefined {
  const match = LOG_LINE.exec(line);
  return match === null ? undefined : { at: Number(match[1]), text: match[2]! };
}

export interface BootTimestamps {
  /** printk clock, s: the kernel starts /init. */
  runInit: number;
  /** printk clock, s: each init.sh marker's record. */
  markers: Record<InitMarker, number>;
  /** /proc/uptime minus the printk clock, s, from the last marker. */
  uptimeOffset: number;
}

/** The boot's timestamps from its kernel log; throws naming what is missing. */
export function bootTimestamps(lines: readonly string[]): BootTimestamps {
  let runInit: number | undefined;
  const markers: Partial<Record<InitMarker, number>> = {};
  let uptimeOffset: number | undefined;
  for (const line of lines) {
    const parsed = parseLogLine(line);
    if (parsed === undefined) continue;
    if (RUN_INIT.test(parsed.text)) runInit ??= parsed.at;
    const marker = MARKER.exec(parsed.text);
    if (marker !== null && (INIT_MARKERS as readonly string[]).includes(marker[1]!)) {
      markers[marker[1] as InitMarker] ??= parsed.at;
      uptimeOffset = Number(marker[2]) - parsed.at;
    }
  }
  if (runInit === undefined) throw new Error("the kernel log has no 'Run /init as init process' record");
  const missing = INIT_MARKERS.filter((name) => markers[name] === undefined && !OPTIONAL_MARKERS.includes(name));
  if (missing.length > 0) throw new Error(`the kernel log has no mmapkit-init marker for ${missing.join(', ')} (guest/init.sh writes them)`);
  // Without the hold point the guest goes on at once after its modules.
  markers.resume ??= markers.modules;
  return { runInit, markers: markers as Record<InitMarker, number>, uptimeOffset: uptimeOffset! };
}

/**
 * Seconds per phase. `hostBootS`: QEMU's start to the ready message on the
 * host; `readyUptimeS`: the guest's uptime in that message.
 */
export function bootPhases(stamps: BootTimestamps, hostBootS: number, readyUptimeS: number, restored = false): Record<BootPhase, number> {
  const { runInit, markers, uptimeOffset } = stamps;
  const ready = readyUptimeS - uptimeOffset;
  const after = { mounts: markers.root - markers.resume, agent: ready - markers.root };
  if (restored) {
    // The kernel log's earlier records are the saved boot's, not this guest's.
    return { qemu: 0, kernel: 0, init: 0, modules: 0, restore: hostBootS - (ready - markers.resume), ...after };
  }
  return {
    qemu: hostBootS - ready,
    kernel: runInit,
    init: markers.init - runInit,
    modules: markers.modules - markers.init,
    restore: markers.resume - markers.modules,
    ...after,
  };
}
