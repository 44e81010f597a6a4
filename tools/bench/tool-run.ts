/**
 * `mmapkit bench --tool`'s measurements: boots the guest again and again
 * (variants interleaved, ABAB... or ABCABC..., when levers are compared),
 * times each boot's phases from the guest's own timestamps
 * (tools/bench/tool-phases.ts), then times round trips to the agent, one
 * kind of request at a time, and the host's baseline work between boots.
 */
import { say } from '../cli/messages.js';
import { withGuest } from '../cli/guest-command.js';
import type { GuestClient } from '../qemu/guest-client.js';
import type { GuestRunOptions } from '../qemu/guest-run.js';
import { baselineSampleNs } from './baseline.js';
import { type BootPhase, bootPhases, bootTimestamps } from './tool-phases.js';

/** The requests timed after each boot, cheapest first. */
export const ROUND_TRIPS = ['ping', 'native', 'kmsg', 'exec'] as const;
export type RoundTrip = (typeof ROUND_TRIPS)[number];

export const ROUND_TRIP_TITLES: Readonly<Record<RoundTrip, string>> = {
  ping: 'agent round trip: no-op request (ping)',
  native: 'one addon call (pageSize)',
  kmsg: 'kernel log read (the log gate, per case)',
  exec: 'process started in the guest (exec true)',
};

/** A process start costs far more than a request: fewer of them. */
const EXEC_SHARE = 10;

/** One timing of one request kind, ns. */
async function timeRequest(guest: GuestClient, kind: RoundTrip): Promise<number> {
  const start = process.hrtime.bigint();
  switch (kind) {
    case 'ping':
      await guest.request('ping', {});
      break;
    case 'native':
      await guest.native.pageSize();
      break;
    case 'kmsg':
      await guest.kernelLog();
      break;
    case 'exec':
      await guest.run(['true']);
      break;
  }
  return Number(process.hrtime.bigint() - start);
}

export interface BootSample {
  /** QEMU's start to the ready message, on the host, s. */
  hostBootS: number;
  readyUptimeS: number;
  phases: Record<BootPhase, number>;
  /** ns per request, in the order timed. */
  roundTrips: Record<RoundTrip, number[]>;
}

/**
 * The kernel log from its first record: a cursor from another boot reads
 * the current boot from the start (GuestClient.kernelLog).
 */
const FROM_FIRST_RECORD = { bootId: 'mmapkit-bench-tool', seq: 0 };

/** Boots once, measures, stops; an exit code when the guest did not end cleanly. */
export async function measureBoot(options: GuestRunOptions, requests: number): Promise<BootSample | { exitCode: number }> {
  const outcome = await withGuest({ ...options, loadModule: false, log: () => undefined }, async (session) => {
    const guest = session.guest;
    const ready = session.ready;
    if (ready === undefined || session.bootMs === undefined) throw new Error('the guest agent is not ready');
    const log = await guest.kernelLog(FROM_FIRST_RECORD);
    const hostBootS = session.bootMs / 1000;
    const phases = bootPhases(bootTimestamps(log.lines), hostBootS, ready.uptime, session.restoredFrom !== undefined);
    const roundTrips = { ping: [], native: [], kmsg: [], exec: [] } as Record<RoundTrip, number[]>;
    for (const kind of ROUND_TRIPS) {
      const count = kind === 'exec' ? Math.max(1, Math.ceil(requests / EXEC_SHARE)) : requests;
      await timeRequest(guest, kind); // warm-up, not kept
      for (let i = 0; i < count; i++) roundTrips[kind].push(await timeRequest(guest, kind));
    }
    return { hostBootS, readyUptimeS: ready.uptime, phases, roundTrips };
  });
  return outcome.ok ? outcome.value : { exitCode: outcome.exitCode };
}

export interface Variant {
  /** 'A' (as is), then 'B', 'C', ... */
  name: string;
  /** Words added to the kernel command line. */
  kernelArgs: string[];
  /**
   * Restored from the saved guest (saved at its first boot) instead of booted. Unset, the boot is cold
   * whatever MMAPKIT_SNAPSHOT says: the boot's phases are what this benchmark is for.
   */
  restore?: true;
}

export interface ToolSamples {
  /** By variant name, in the variants' order. */
  boots: Record<string, BootSample[]>;
  /** ns, one per boot, taken just before it. */
  baselineNs: number[];
}

/** `boots` boots of each variant, interleaved ABAB..., each preceded by a baseline sample. */
export async function runToolBench(
  options: GuestRunOptions,
  variants: Variant[],
  boots: number,
  requests: number,
): Promise<ToolSamples | { exitCode: number }> {
  const samples: ToolSamples = { boots: Object.fromEntries(variants.map((variant) => [variant.name, []])), baselineNs: [] };
  for (let round = 1; round <= boots; round++) {
    for (const variant of variants) {
      samples.baselineNs.push(baselineSampleNs());
      const sample = await measureBoot({ ...options, kernelArgs: variant.kernelArgs, snapshot: variant.restore === true }, requests);
      if ('exitCode' in sample) return sample;
      samples.boots[variant.name]!.push(sample);
      say(`bench --tool: boot ${round}/${boots}${variants.length > 1 ? ` ${variant.name}` : ''}: ${sample.hostBootS.toFixed(2)} s to agent ready`);
    }
  }
  return samples;
}
