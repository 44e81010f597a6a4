/**
 * What `mmapkit fuzz` sends the guest agent and what it answers
 * (guest/protocol.ts Ops 'fuzz'): plain JSON, checked on arrival by
 * guest/protocol-check.ts. The fuzz itself is guest/fuzz.ts.
 */

/** The profile's declared choices the model needs (tools/profile.ts Profile), and how to reach the device. */
export interface FuzzTarget {
  name: string;
  /** The device node opened for every fd of the fuzz (guest/fuzz-system.ts openTarget). */
  device: string;
  /** Bytes mappable from `offset` on, a page multiple. */
  size: number;
  /** The mmap offset where the region starts. */
  offset: number;
  writable: boolean;
  initial: 'zero' | 'any';
  private: 'cow' | 'rejected' | 'any';
  readWrite: boolean;
  /**
   * The profile's module, where it names one (as the conformance lifetime case decides): what the
   * 'unload' operation tries to unload, and how the fuzz loads it again if that succeeded.
   */
  module?: FuzzModule;
}

export interface FuzzModule {
  /** The name delete_module(2) takes (tools/qemu/guest-modules.ts moduleName). */
  name: string;
  /** The command line that loads it, insmod or modprobe with the profile's parameters (guest-modules.ts loadArgv). */
  load: string[];
}

/**
 * One operation of a sequence, as JSON: `op` names it, the other fields are
 * its choices (which fd or mapping, by slot; which edge of the region; ...).
 * Slots are resolved modulo what is live when the step runs, so a recorded
 * sequence replays the same way.
 */
export type FuzzStep = { op: string } & Record<string, string | number | boolean>;

/** How to rerun a failure instead of searching: fast-check's own replay, or a recorded sequence run as it is. */
export type FuzzReplay = { path: string; replayPath?: string } | { steps: FuzzStep[] };

export interface FuzzArgs {
  target: FuzzTarget;
  /** Operations to run (at least; a sequence that has started runs to its end). */
  ops: number;
  /** fast-check's seed: the same seed and target generate the same sequences. */
  seed: number;
  replay?: FuzzReplay;
}

export interface FuzzFailure {
  /** What the failing step saw against what the model allows. */
  error: string;
  /** The shrunk sequence, the failing step last. */
  steps: FuzzStep[];
  /** fast-check's counterexample path: with the seed, `--replay SEED:PATH` reruns it. */
  path?: string;
  /** fast-check's replayPath of the shrunk command list (fc.commands' replayPath). */
  replayPath?: string;
  /** Successful shrink steps. */
  shrinks: number;
}

export interface FuzzReport {
  passed: boolean;
  seed: number;
  /** Operations run before the first failure (all of them when it passed). */
  ops: number;
  /** Sequences run before the first failure. */
  runs: number;
  /** Operations run while shrinking. */
  shrinkOps: number;
  /** Wall time in the guest, ms. */
  ms: number;
  failure?: FuzzFailure;
  /** Where the time went: per operation (shrinking included) and the rest (fast-check, the first reading of the device). */
  timing?: FuzzTiming;
}

export interface FuzzTiming {
  /** Per op (and '(release and reset)' after each sequence): how many ran and their ms in all. */
  ops: Record<string, { count: number; ms: number }>;
  /** ms not spent in an operation or a reset: generating and shrinking sequences, setting up. */
  otherMs: number;
}
