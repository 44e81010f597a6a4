/**
 * The guests one conformance run shares out to its test files.
 *
 * A case is mostly work in the guest, where the agent is single-threaded: one
 * TCG guest of two vCPUs keeps about 1.4 host CPUs busy (its forks and kernel
 * work take the second vCPU at times). On two host CPUs a second guest, running
 * half the files, has the rest: a whole run takes about 0.9 times as long
 * (docs/benchmarks.md, "Test files in two guests at once"). The first guest keeps the vCPUs the
 * concurrency cases race on, and runs them alone once the other files are
 * done (vitest.config.ts, project conformance-races): their faults overlap
 * only while the host's CPUs are theirs. The others take one vCPU each, which
 * is all a single-threaded agent uses and competes least for the host.
 */
import { type GuestRunOptions, type SharedGuest, shareGuest } from '../qemu/guest-run.js';
import type { CrashRecord } from '../qemu/guest-supervisor.js';
import type { SessionEnd } from '../qemu/outcome.js';
import type { VmSession } from '../qemu/session.js';

/**
 * The vCPUs of guest `index` of `count`: the first keeps the default (two, for the races),
 * the others one, unless MMAPKIT_GUEST_CPUS sets every guest's (tools/qemu/session.ts guestCpus).
 */
export function poolGuestCpus(index: number, count: number, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const given = env.MMAPKIT_GUEST_CPUS;
  return index === 0 || count === 1 || (given !== undefined && given !== '') ? undefined : 1;
}

/** The run's guests, the racing one first; each replaced on its own when it crashes. */
export interface GuestPool {
  guests: SharedGuest[];
  /** The relays' sockets, in the guests' order: what the test files connect to. */
  sockets: string[];
  /** The longest case timeout of the guests (each guest's from its own boot). */
  caseTimeoutMs: number;
  /** Every guest's crashes and hangs, guest by guest. */
  crashes: CrashRecord[];
  /** Every session booted, guest by guest. */
  sessions: VmSession[];
  /** The first guest that could not be had any more (its supervisor's failure says why), if one could not. */
  failed?: SharedGuest;
  admit(): void;
  /** Closes every relay and guest; the end of the first guest that did not end cleanly, else the first's. */
  close(): Promise<GuestEnd>;
}

/** How a guest of the pool ended: its last session, and that session's end. */
export interface GuestEnd {
  end: SessionEnd;
  session: VmSession;
}

/**
 * Boots `count` guests at once (shareGuest each), or none: when one fails to
 * boot, those that came up are stopped and the failure is thrown.
 */
export async function sharePool(options: GuestRunOptions, count: number, held = false): Promise<GuestPool> {
  const booting = Array.from({ length: count }, (_, index) => {
    const cpus = poolGuestCpus(index, count);
    return shareGuest({ ...options, ...(cpus !== undefined && { cpus }) }, held);
  });
  const settled = await Promise.allSettled(booting);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  const guests = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (failed !== undefined) {
    await Promise.all(guests.map((guest) => guest.close()));
    throw failed.reason;
  }
  return poolOf(guests);
}

function poolOf(guests: SharedGuest[]): GuestPool {
  return {
    guests,
    sockets: guests.map((guest) => guest.socket),
    caseTimeoutMs: Math.max(...guests.map((guest) => guest.caseTimeoutMs)),
    get crashes() {
      return guests.flatMap((guest) => guest.supervisor.crashes);
    },
    get sessions() {
      return guests.flatMap((guest) => guest.supervisor.sessions);
    },
    get failed() {
      return guests.find((guest) => guest.supervisor.failure !== undefined);
    },
    admit() {
      for (const guest of guests) guest.admit();
    },
    async close() {
      const ends = await Promise.all(guests.map(async (guest): Promise<GuestEnd> => ({ end: await guest.close(), session: guest.supervisor.sessions.at(-1)! })));
      return ends.find(({ end }) => end.state !== 'completed') ?? ends[0]!;
    },
  };
}
