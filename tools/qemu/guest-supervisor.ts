/**
 * Keeps a guest available for a whole conformance run even when a driver
 * under test crashes or hangs the guest kernel: the session that died is
 * recorded as a crash (with its console excerpt), a new VM is booted with the
 * same options and prepared the same way (modules loaded), and the run goes
 * on. Each replacement bumps `generation`, which the relay uses to tell
 * connections that their guest-side state (fds, mappings) is gone.
 */
import { crashExcerpt, tail } from './console.js';
import { type EndState, type SessionEnd, SessionEndedError } from './outcome.js';
import type { VmSession } from './session.js';

export interface CrashRecord {
  state: Exclude<EndState, 'completed'>;
  reason: string;
  /** The console lines that show what happened (the oops or panic, else the tail). */
  excerpt: string[];
  consoleLog: string;
}

/**
 * After this many crashes or hangs the remaining cases are not run: a driver
 * that takes the guest down on every touch (a livelocking fault handler hangs
 * each case until the request deadline) would otherwise turn one run into an
 * hour of reboots.
 */
const MAX_CRASHES = 3;

/** How long to wait for QEMU to finish dying before describing the crash. */
const CRASH_REPORT_WAIT_MS = 15_000;

export class GuestSupervisor {
  readonly crashes: CrashRecord[] = [];
  /** Every session booted, in order; the last is the current one. */
  readonly sessions: VmSession[] = [];
  generation = 0;
  /** Set when no guest can be had any more: a replacement failed to boot, or too many crashes. */
  failure?: { end: SessionEnd; session: VmSession };
  private current: Promise<VmSession>;
  private stopping = false;

  private constructor(
    first: VmSession,
    private readonly bootGuest: () => Promise<VmSession>,
    private readonly log: (line: string) => void,
  ) {
    this.current = Promise.resolve(first);
    this.watch(first);
  }

  /** Boots the first guest; a failure here is the run's boot failure, thrown as is. */
  static async start(bootGuest: () => Promise<VmSession>, log: (line: string) => void): Promise<GuestSupervisor> {
    return new GuestSupervisor(await bootGuest(), bootGuest, log);
  }

  /** The live guest, waiting for a replacement being booted. Rejects once no guest can be had. */
  session(): Promise<VmSession> {
    return this.current;
  }

  /** The record of the crash that ended `session`, once its end is known (undefined for a clean end). */
  async crashOf(session: VmSession): Promise<CrashRecord | undefined> {
    const end = await session.ended;
    return end.state === 'completed' ? undefined : this.describe(session, end);
  }

  /**
   * crashOf, for a guest whose channel has just closed: QEMU's end, which says how it died, comes a
   * moment later. Undefined if it has not ended within `ms`.
   */
  crashOfWithin(session: VmSession, ms = CRASH_REPORT_WAIT_MS): Promise<CrashRecord | undefined> {
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref());
    return Promise.race([this.crashOf(session), timeout]);
  }

  private describe(session: VmSession, end: SessionEnd): CrashRecord {
    const lines = session.lines();
    const excerpt = crashExcerpt(lines, session.findings());
    return {
      state: end.state as CrashRecord['state'],
      reason: end.reason,
      excerpt: excerpt.length > 0 ? excerpt : tail(lines),
      consoleLog: session.consoleLog,
    };
  }

  private watch(session: VmSession): void {
    this.sessions.push(session);
    void session.ended.then((end) => {
      if (this.stopping || end.state === 'completed') return;
      const crash = this.describe(session, end);
      this.crashes.push(crash);
      this.generation++;
      if (this.crashes.length >= MAX_CRASHES) {
        this.log(`${crash.reason}; the guest crashed or hung ${MAX_CRASHES} times in this run: the remaining cases are not run`);
        this.failure = { end, session };
        this.current = Promise.reject(new SessionEndedError(end, session));
        this.current.catch(() => undefined);
        return;
      }
      this.log(`${crash.reason} (console: ${crash.consoleLog}); booting a new guest to go on`);
      this.current = this.replace();
      this.current.catch(() => undefined);
    });
  }

  private async replace(): Promise<VmSession> {
    try {
      const session = await this.bootGuest();
      this.watch(session);
      return session;
    } catch (error) {
      if (error instanceof SessionEndedError) this.failure = { end: error.end, session: error.session };
      throw error;
    }
  }

  /** Stops the live guest; the end of the last session booted. */
  async stop(): Promise<SessionEnd> {
    this.stopping = true;
    try {
      return await (await this.current).stop();
    } catch (error) {
      if (error instanceof SessionEndedError) return error.end;
      throw error;
    }
  }
}
