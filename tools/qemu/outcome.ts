/**
 * How a VM session ended. The host knows four facts — whether the agent
 * came up, whether QEMU exited, which deadline (if any) fired, and what the
 * console shows — and each combination maps to one end state.
 */
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import { FATAL_KINDS, type Finding, initFailure } from './console.js';
import type { VmSession } from './session.js';

export type EndState = 'completed' | 'guest-crashed' | 'boot-failed' | 'timed-out';

export type Deadline = 'boot' | 'request' | 'run';

export interface SessionFacts {
  agentReady: boolean;
  /** True when the host asked the guest to stop (the normal end). */
  stopRequested: boolean;
  deadline?: Deadline;
  /** Seconds, for the message. */
  deadlineSeconds?: number;
  consoleFindings: Finding[];
  consoleLines: string[];
  qemuExit?: { code: number | null; signal: string | null };
  qemuStderr?: string;
}

export interface SessionEnd {
  state: EndState;
  reason: string;
}

/** The session ended before it could be used; carries the end state and, through the session, the console. */
export class SessionEndedError extends Error {
  constructor(
    readonly end: SessionEnd,
    readonly session: VmSession,
  ) {
    super(end.reason);
    this.name = 'SessionEndedError';
  }
}

export const EXIT_CODE_OF: Record<Exclude<EndState, 'completed'>, ExitCodeValue> = {
  'guest-crashed': ExitCode.GUEST_CRASHED,
  'boot-failed': ExitCode.BOOT_FAILED,
  'timed-out': ExitCode.TIMED_OUT,
};

function describeExit(facts: SessionFacts): string {
  const stderr = facts.qemuStderr?.trim().split('\n').at(-1);
  if (stderr !== undefined && stderr !== '') return `QEMU: ${stderr}`;
  const exit = facts.qemuExit;
  if (exit === undefined) return 'QEMU exited';
  return exit.signal !== null ? `QEMU was killed by ${exit.signal}` : `QEMU exited with status ${String(exit.code)}`;
}

export function classifyEnd(facts: SessionFacts): SessionEnd {
  const fatal = facts.consoleFindings.find((finding) => FATAL_KINDS.has(finding.kind));
  if (fatal !== undefined) {
    return facts.agentReady
      ? { state: 'guest-crashed', reason: `guest kernel crashed: ${fatal.line}` }
      : { state: 'boot-failed', reason: `guest kernel crashed while booting: ${fatal.line}` };
  }
  if (facts.deadline === 'boot') {
    const failure = initFailure(facts.consoleLines);
    return {
      state: 'boot-failed',
      reason: failure ?? `the guest agent did not come up within ${String(facts.deadlineSeconds)} s`,
    };
  }
  if (facts.deadline !== undefined) {
    const what = facts.deadline === 'request' ? 'a request to the guest' : 'the run';
    return { state: 'timed-out', reason: `${what} took longer than ${String(facts.deadlineSeconds)} s` };
  }
  if (!facts.agentReady) {
    const failure = initFailure(facts.consoleLines);
    return { state: 'boot-failed', reason: failure ?? `the guest stopped before its agent came up (${describeExit(facts)})` };
  }
  if (!facts.stopRequested) {
    return { state: 'guest-crashed', reason: `the guest stopped unexpectedly (${describeExit(facts)})` };
  }
  return { state: 'completed', reason: 'the guest shut down cleanly' };
}
