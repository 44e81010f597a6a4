/**
 * `mmapkit fuzz` in the guest: random sequences of operations on the device
 * under test (open/close, mmap at the region's edges, munmap, mprotect,
 * mremap, madvise, reads and writes through mappings and through
 * read()/write(), fork, threads faulting fresh mappings at the same moment,
 * an attempt to unload the module while a mapping outlives its fd), each judged against the model
 * (guest/fuzz-model.ts) as it runs, by fast-check's model-based commands.
 * On a failure fast-check shrinks the sequence, in the guest, to a minimal
 * one; the report carries it, the seed and fast-check's path, so that
 * either replays it.
 *
 * Bundled by `mmapkit build` to build/guest/fuzz.cjs; the agent imports it
 * for a 'fuzz' request (guest/agent.ts), so the agent itself stays small.
 * Model and system run in one process, calling the addon synchronously: no
 * round trip per operation.
 */
import fc from 'fast-check';
import type { NativeAddon } from '../native/index.js';
import { FuzzWorld, MAX_MAP_PAGES, canRace, describeStep } from './fuzz-model.js';
import { type FuzzSystem, nativeSystem } from './fuzz-system.js';
import type { FuzzArgs, FuzzFailure, FuzzReport, FuzzStep, FuzzTarget, FuzzTiming } from './fuzz-types.js';

/** The longest sequence fast-check generates; shrinking starts from at most this many operations. */
export const MAX_SEQUENCE = 100;

/** One operation as a fast-check command: whether it can run in the model's state, and running it. */
class StepCommand implements fc.Command<FuzzWorld, FuzzSystem> {
  constructor(readonly step: FuzzStep) {}

  check(world: Readonly<FuzzWorld>): boolean {
    return world.canRun(this.step);
  }

  run(world: FuzzWorld): void {
    trace(world).push(this.step);
    const started = performance.now();
    try {
      world.run(this.step);
    } finally {
      timings.get(world)?.count(this.step.op, performance.now() - started);
    }
  }

  toString(): string {
    return describeStep(this.step);
  }
}

/** Where a fuzz's time goes, per operation and in the reset between sequences (FuzzReport.timing). */
class Timing {
  readonly ops: Record<string, { count: number; ms: number }> = {};
  count(op: string, ms: number): void {
    const entry = (this.ops[op] ??= { count: 0, ms: 0 });
    entry.count++;
    entry.ms += ms;
  }
  report(totalMs: number): FuzzTiming {
    const rounded = Object.fromEntries(Object.entries(this.ops).map(([op, { count, ms }]) => [op, { count, ms: Math.round(ms) }]));
    const inOps = Object.values(this.ops).reduce((sum, { ms }) => sum + ms, 0);
    return { ops: rounded, otherMs: Math.round(totalMs - inOps) };
  }
}
/** Each world's fuzz run's Timing: fast-check hands a command the world only. */
const timings = new WeakMap<FuzzWorld, Timing>();

const traces = new WeakMap<FuzzWorld, FuzzStep[]>();
/** The steps a sequence ran, in order: the failing one last. */
function trace(world: FuzzWorld): FuzzStep[] {
  let steps = traces.get(world);
  if (steps === undefined) traces.set(world, (steps = []));
  return steps;
}

/**
 * The operations, weighted, with their choices biased to the edges the
 * catalogue names: the region's first and last page, one page past its end,
 * offset 2^44 (catalogue A7), an unaligned offset and a zero length
 * (catalogue A1, A4), a length one page past the region (catalogue A6).
 */
export function stepArbitrary(target: FuzzTarget, page: number): fc.Arbitrary<FuzzStep> {
  const slot = fc.nat({ max: 15 });
  const regionPages = target.size / page;
  // Edges and anywhere, about half and half.
  const pageEdge = fc.oneof(fc.constantFrom('first', 'last'), fc.nat({ max: Math.max(0, regionPages - 1) }));
  const byteAt = fc.oneof(fc.constantFrom('first', 'last'), fc.nat({ max: page - 1 }));
  const length = fc.oneof(fc.constantFrom(1, 8, 64), fc.integer({ min: 1, max: 256 }));
  const byte = fc.nat({ max: 255 });
  const prot = fc.constantFrom('r', 'rw', 'none');
  const position = fc.oneof(fc.constantFrom('first', 'last', 'lastPage', 'end', 'huge'), fc.nat({ max: target.size - 1 }));
  const op = <T extends Record<string, fc.Arbitrary<string | number | boolean>>>(name: string, choices: T): fc.Arbitrary<FuzzStep> =>
    fc.record(choices).map((picked) => ({ op: name, ...picked }) as FuzzStep);
  const weighted: fc.WeightedArbitrary<FuzzStep>[] = [
    { weight: 2, arbitrary: op('open', { rw: fc.boolean() }) },
    { weight: 2, arbitrary: op('close', { slot }) },
    {
      weight: 12,
      arbitrary: op('mmap', {
        fd: slot,
        // Inside the region most of the time, so that most mappings are made and used; past it often enough.
        off: fc.oneof(
          { weight: 2, arbitrary: fc.constantFrom('first', 'last') },
          { weight: 1, arbitrary: fc.constantFrom('end', 'huge', 'unaligned') },
          { weight: 3, arbitrary: fc.nat({ max: Math.max(0, regionPages - 1) }) },
        ),
        len: fc.oneof(
          { weight: 2, arbitrary: fc.constantFrom('byte', 'rest', 'whole') },
          { weight: 1, arbitrary: fc.constantFrom('zero', 'past') },
          { weight: 3, arbitrary: fc.integer({ min: 1, max: MAX_MAP_PAGES }) },
        ),
        prot,
        shared: fc.boolean(),
      }),
    },
    { weight: 5, arbitrary: op('munmap', { slot, part: fc.constantFrom('whole', 'first', 'last', 'middle') }) },
    { weight: 5, arbitrary: op('mprotect', { slot, prot }) },
    { weight: 5, arbitrary: op('mremap', { slot, kind: fc.constantFrom('shrink', 'grow', 'move') }) },
    { weight: 4, arbitrary: op('madvise', { slot, advice: fc.constantFrom('dontneed', 'dontfork', 'dofork', 'willneed', 'normal') }) },
    { weight: 25, arbitrary: op('read', { slot, page: pageEdge, at: byteAt, len: length }) },
    { weight: 2, arbitrary: op('readAll', { slot }) },
    { weight: 15, arbitrary: op('write', { slot, page: pageEdge, at: byteAt, len: length, byte }) },
    // A fork copies the agent's whole address space: few of them.
    { weight: 1, arbitrary: op('fork', { slot, page: pageEdge, at: byteAt, len: length }) },
    { weight: 1, arbitrary: op('forkExit', {}) },
  ];
  if (canRace(target, regionPages)) {
    // A fork of its own and rounds of faults on both CPUs: few of them (about one a sequence). Two workers, one per
    // vCPU of the guest: more spin at raceFaults' barrier for a CPU (a step took 0.6-0.7 s with three or four
    // workers against 0.05-0.2 s with two, measured) and fault no more at the same moment.
    weighted.push({
      weight: 1,
      arbitrary: op('race', { off: pageEdge, len: fc.integer({ min: 2, max: MAX_MAP_PAGES }), workers: fc.constant(2), access: fc.constantFrom('read', 'write') }),
    });
  }
  if (target.module !== undefined) {
    // It closes every fd first (the sequence must open one again to map more): few of them.
    weighted.push({ weight: 1, arbitrary: op('unload', {}) });
  }
  if (target.readWrite) {
    weighted.push(
      { weight: 8, arbitrary: op('pread', { fd: slot, pos: position, len: length }) },
      { weight: 8, arbitrary: op('pwrite', { fd: slot, pos: position, len: length, byte }) },
    );
  }
  return fc.oneof(...weighted);
}

/**
 * The device's content at the start of each sequence. A writable device is
 * zeroed through a shared mapping after every sequence; the first sequence
 * sees it as it was loaded ("initial": "zero" promises zeroes then, catalogue
 * A2). A device the fuzz cannot write keeps its content: zeroes, or for
 * "initial": "any" what a read through a mapping shows at the start.
 */
class DeviceState {
  private readonly start: Uint8Array;
  /** The model's copy a sequence writes (FuzzWorld.device): one for the whole fuzz, its touched pages restored after each sequence rather than the region copied for each. */
  private readonly model: Uint8Array;

  constructor(
    private readonly system: FuzzSystem,
    private readonly target: FuzzTarget,
  ) {
    this.start = new Uint8Array(target.size);
    this.model = new Uint8Array(target.size);
    if (target.initial === 'zero') return;
    if (target.writable) this.reset(Array.from({ length: target.size / system.page }, (_, page) => page));
    else this.start.set(this.throughMapping(false, (addr) => system.readBytes(addr, target.size)));
    this.model.set(this.start);
  }

  /** What the device holds at the start of a sequence, for the sequence's model to write. */
  content(): Uint8Array {
    return this.model;
  }

  /** Zeroes the region pages a sequence wrote (FuzzWorld.touched), through one shared mapping, and in the model. */
  reset(pages: Iterable<number>): void {
    const { page } = this.system;
    const wanted = [...pages].filter((each) => each >= 0 && each * page < this.target.size);
    for (const each of wanted) this.model.set(this.start.subarray(each * page, (each + 1) * page), each * page);
    if (!this.target.writable || wanted.length === 0) return;
    const zeroes = new Uint8Array(this.system.page);
    this.throughMapping(true, (addr) => {
      for (const page of wanted) this.system.writeBytes(addr + BigInt(page * this.system.page), zeroes);
    });
  }

  private throughMapping<T>(write: boolean, use: (addr: bigint) => T): T {
    const { system, target } = this;
    const { c } = system;
    const fd = system.open(write ? c.O_RDWR : c.O_RDONLY);
    try {
      const addr = system.mmap(BigInt(target.size), write ? c.PROT_READ | c.PROT_WRITE : c.PROT_READ, c.MAP_SHARED, fd, BigInt(target.offset));
      try {
        return use(addr);
      } finally {
        system.munmap(addr, BigInt(target.size));
      }
    } finally {
      system.close(fd);
    }
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** What every sequence of one fuzz shares. */
interface FuzzRun {
  system: FuzzSystem;
  target: FuzzTarget;
  state: DeviceState;
  timing: Timing;
  /** Rerunning a recorded failure rather than searching (FuzzWorld's race effort). */
  replaying: boolean;
}

/** Runs one sequence from a fresh world; the world is released and the device reset whatever happens. */
function runSequence(run: FuzzRun, commands: Iterable<fc.Command<FuzzWorld, FuzzSystem>>): { steps: FuzzStep[]; gone: boolean; error?: unknown } {
  const { system, target, state, timing } = run;
  const world = new FuzzWorld(system, target, state.content(), run.replaying ? 'replay' : 'search');
  timings.set(world, timing);
  let error: unknown;
  let failed = false;
  try {
    world.begin();
    fc.modelRun(() => ({ model: world, real: system }), commands);
  } catch (thrown) {
    [error, failed] = [thrown, true];
  }
  const started = performance.now();
  try {
    world.release();
    // A device unloaded for good has nothing to reset.
    if (!world.gone) state.reset(world.touched);
  } catch (thrown) {
    // A failure to clean up is a failure of the sequence too (a munmap refused, a reset that faulted).
    if (!failed) [error, failed] = [new Error(`after the sequence: ${messageOf(thrown)}`), true];
  }
  timing.count('(release and reset)', performance.now() - started);
  return { steps: trace(world), gone: world.gone, ...(failed && { error }) };
}

/** fast-check's replayPath of a commands counterexample, from its printed form. */
function replayPathOf(counterexample: unknown): string | undefined {
  const match = /replayPath=("(?:[^"\\]|\\.)*")/.exec(String(counterexample));
  return match === null ? undefined : (JSON.parse(match[1]!) as string);
}

/**
 * The sequence every fuzz starts with, before any other has written the
 * device: the whole region mapped and read (catalogue A2: "initial": "zero"
 * promises zeroes right after load). Only the first sequence sees the device
 * as it was loaded, and a random one may never read it whole.
 */
export const FIRST_SEQUENCE: FuzzStep[] = [
  { op: 'mmap', fd: 0, off: 'first', len: 'whole', prot: 'r', shared: true },
  { op: 'readAll', slot: 0 },
];

/** Runs steps as they are, once: the first sequence, or a replayed one. */
function runSteps(run: FuzzRun, steps: FuzzStep[], seed: number, started: number): FuzzReport {
  const ran = runSequence(run, steps.map((step) => new StepCommand(step)));
  const failure: FuzzFailure | undefined = ran.error === undefined ? undefined : { error: messageOf(ran.error), steps: ran.steps, shrinks: 0 };
  return { passed: failure === undefined, seed, ops: ran.steps.length, runs: 1, shrinkOps: 0, ms: Date.now() - started, ...(failure && { failure }) };
}

export function runFuzz(system: FuzzSystem, args: FuzzArgs): FuzzReport {
  const timing = new Timing();
  // Most refusals the model allows arrive as thrown errors (an errno, a fault); capturing a deep stack for
  // each is wasted under emulation. A failure's report is its message and the sequence, not a stack.
  const { stackTraceLimit } = Error;
  Error.stackTraceLimit = 2;
  try {
    const report = searchOrReplay(system, args, timing);
    return { ...report, timing: timing.report(report.ms) };
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

function searchOrReplay(system: FuzzSystem, args: FuzzArgs, timing: Timing): FuzzReport {
  const started = Date.now();
  const { target, seed, replay } = args;
  const replaying = replay !== undefined;
  const run: FuzzRun = { system, target, state: new DeviceState(system, target), timing, replaying };
  if (replay !== undefined && 'steps' in replay) return runSteps(run, replay.steps, seed, started);
  const first = replay === undefined ? runSteps(run, FIRST_SEQUENCE, seed, started) : undefined;
  if (first !== undefined && !first.passed) return first;
  let ops = first?.ops ?? 0;
  let runs = first?.runs ?? 0;
  let shrinkOps = 0;
  let last: { steps: FuzzStep[]; error: string } | undefined;
  /** The module was unloaded and did not load again: no further sequence can run, shrinking stops where it is. */
  let gone = false;
  const commands = fc.commands([stepArbitrary(target, system.page).map((step) => new StepCommand(step))], {
    maxCommands: MAX_SEQUENCE,
    size: 'max',
    ...(replay?.replayPath !== undefined && { replayPath: replay.replayPath }),
  });
  const property = fc.property(commands, (sequence) => {
    // Past the budget the search stops: fast-check generates sequences lazily, so an interrupt costs
    // no further generation (a run that merely passed would still have its sequence generated).
    // Once a failure is found every run counts (shrinking).
    if (gone || (last === undefined && !replaying && ops >= args.ops)) throw new fc.PreconditionFailure(true);
    const ran = runSequence(run, sequence);
    const { steps, error } = ran;
    gone = ran.gone;
    if (last === undefined) [ops, runs] = [ops + steps.length, runs + 1];
    else shrinkOps += steps.length;
    if (error === undefined) return;
    last = { steps, error: messageOf(error) };
    throw error;
  });
  const details = fc.check(property, {
    seed,
    // A bound, never reached: the budget interrupts the search first (a sequence runs at least one operation,
    // and fewer than 100 may run none).
    numRuns: args.ops + 100,
    ...(replay !== undefined && { path: replay.path, endOnFailure: true }),
  });
  if (!details.failed) {
    return { passed: true, seed, ops, runs, shrinkOps, ms: Date.now() - started };
  }
  const replayPath = replayPathOf(details.counterexample?.[0]);
  const failure: FuzzFailure = {
    error: last?.error ?? messageOf(details.errorInstance),
    steps: last?.steps ?? [],
    shrinks: details.numShrinks,
    ...(details.counterexamplePath !== null && { path: details.counterexamplePath }),
    ...(replayPath !== undefined && { replayPath }),
  };
  return { passed: false, seed, ops, runs, shrinkOps, ms: Date.now() - started, failure };
}

/** The agent's entry: the fuzz against the real kernel through the addon. */
export function fuzzOnDevice(native: NativeAddon, args: FuzzArgs): FuzzReport {
  return runFuzz(nativeSystem(native, args.target), args);
}
