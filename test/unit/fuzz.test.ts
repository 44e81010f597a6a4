/**
 * The model of `mmapkit fuzz` (guest/fuzz-model.ts, guest/fuzz.ts) against
 * a fake driver (fuzz-fake.ts): a correct one passes whatever the seed, and
 * each planted bug fails with a short shrunk sequence that both replays
 * (the recorded steps, fast-check's seed and path) reproduce.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MAP_PAGES, RACE_MIN_OVERLAPS, RACE_REPLAY_MIN_OVERLAPS, RACE_REPLAY_TIME_LIMIT_MS, RACE_ROUNDS, RACE_TIME_LIMIT_MS, edge, mapLength, pagePattern } from '../../guest/fuzz-model.js';
import { FIRST_SEQUENCE, runFuzz, stepArbitrary } from '../../guest/fuzz.js';
import type { FuzzReport, FuzzTarget } from '../../guest/fuzz-types.js';
import { type FakeBug, fakeSystem } from './fuzz-fake.js';

const PAGE = 4096;

/** A module the fuzz may try to unload, as a profile's "module" gives it (tools/fuzz/command.ts fuzzTarget). */
const MODULE = { name: 'fake', load: ['insmod', '/fake.ko'] };

/** Shaped as the reference driver's remap, fault and read-only profiles (test/profiles/), over 16 pages; 'offset' names no module. */
const TARGETS: Record<string, FuzzTarget> = {
  remap: { name: 'remap', device: '/dev/fake', size: 16 * PAGE, offset: 0, writable: true, initial: 'zero', private: 'cow', readWrite: true, module: MODULE },
  fault: { name: 'fault', device: '/dev/fake', size: 16 * PAGE, offset: 0, writable: true, initial: 'zero', private: 'rejected', readWrite: true, module: MODULE },
  ro: { name: 'ro', device: '/dev/fake', size: 16 * PAGE, offset: 0, writable: false, initial: 'zero', private: 'rejected', readWrite: false, module: MODULE },
  offset: { name: 'offset', device: '/dev/fake', size: 8 * PAGE, offset: 4 * PAGE, writable: true, initial: 'any', private: 'any', readWrite: true },
};

function fuzzFake(target: FuzzTarget, seed: number, bug?: FakeBug, ops = 600): FuzzReport {
  return runFuzz(fakeSystem(target, bug), { target, ops, seed });
}

describe('fuzz model against a correct fake driver', () => {
  it.each(Object.keys(TARGETS))('%s: passes, runs at least the operations asked for, and leaves nothing open or mapped', (name) => {
    const target = TARGETS[name]!;
    const system = fakeSystem(target);
    const report = runFuzz(system, { target, ops: 1500, seed: 42 });
    expect(report.failure?.error).toBeUndefined();
    expect(report.passed).toBe(true);
    expect(report.seed).toBe(42);
    expect(report.ops).toBeGreaterThanOrEqual(1500);
    expect(report.runs).toBeGreaterThan(1);
    expect([system.liveFds, system.livePages]).toEqual([0, 0]);
  });

  it('passes whatever the seed', () => {
    fc.assert(
      fc.property(fc.integer(), fc.constantFrom(...Object.keys(TARGETS)), (seed, name) => {
        const report = fuzzFake(TARGETS[name]!, seed, undefined, 200);
        if (!report.passed) throw new Error(`seed ${seed} on ${name}: ${report.failure?.error ?? ''}`);
      }),
      { numRuns: 20 },
    );
  });

  it('the same seed runs the same sequences', () => {
    const [a, b] = [fuzzFake(TARGETS.remap!, 7), fuzzFake(TARGETS.remap!, 7)];
    expect(a.ops).toBe(b.ops);
    expect(a.runs).toBe(b.runs);
  });
});

describe('fuzz model against a buggy fake driver', () => {
  const BUGS: { bug: FakeBug; target: string; error: RegExp }[] = [
    { bug: 'nobounds', target: 'remap', error: /past the region must fault/ },
    { bug: 'dontexpand', target: 'remap', error: /past the region must fault|unlike region byte/ },
    { bug: 'cowleak', target: 'remap', error: /unlike|read\(\) at/ },
    { bug: 'racyfault', target: 'fault', error: /^race\(.*\): threads faulting distinct pages at the same moment saw a page holding another page's index .*: worker 1 round 0: region page \d+ held \d+/ },
    { bug: 'noowner', target: 'remap', error: /^unload\(\): delete_module\(fake, O_NONBLOCK\) succeeded while 1 mapping\(s\) outlived every fd; allowed: EAGAIN .*the module was loaded again$/ },
  ];

  it('stale: the first sequence, the whole region read right after load, catches it (catalogue A2)', () => {
    const report = fuzzFake(TARGETS.remap!, 1234, 'stale', 3000);
    expect(report.passed).toBe(false);
    expect(report.failure?.steps).toEqual(FIRST_SEQUENCE);
    expect(report.failure?.error).toMatch(/readAll\(slot=0\): read 4096 bytes at page 0 of the mapping unlike region byte 0x0: byte 0: got 0xa5, the model says 0x0/);
    const replayed = runFuzz(fakeSystem(TARGETS.remap!, 'stale'), { target: TARGETS.remap!, ops: 0, seed: 1, replay: { steps: FIRST_SEQUENCE } });
    expect(replayed.failure?.error).toBe(report.failure?.error);
  });

  it.each(BUGS)('$bug: fails with a short shrunk sequence that both replays reproduce', ({ bug, target: name, error }) => {
    const target = TARGETS[name]!;
    const report = fuzzFake(target, 1234, bug, 3000);
    expect(report.passed).toBe(false);
    const failure = report.failure!;
    expect(failure.error).toMatch(error);
    // Shrunk: the bug needs a handful of operations, not the hundred a sequence may hold.
    expect(failure.steps.length).toBeGreaterThan(0);
    expect(failure.steps.length).toBeLessThanOrEqual(6);
    expect(failure.path).toMatch(/^\d+(:\d+)*$/);

    const fromSteps = runFuzz(fakeSystem(target, bug), { target, ops: 0, seed: report.seed, replay: { steps: failure.steps } });
    expect(fromSteps.passed).toBe(false);
    expect(fromSteps.failure?.error).toBe(failure.error);
    expect(fromSteps.failure?.steps).toEqual(failure.steps);

    const fromPath = runFuzz(fakeSystem(target, bug), {
      target,
      ops: 0,
      seed: report.seed,
      replay: { path: failure.path!, ...(failure.replayPath !== undefined && { replayPath: failure.replayPath }) },
    });
    expect(fromPath.passed).toBe(false);
    expect(fromPath.failure?.steps).toEqual(failure.steps);
  });

  it('a replayed sequence on a correct driver passes', () => {
    const failing = fuzzFake(TARGETS.remap!, 1234, 'nobounds', 3000).failure!;
    const report = runFuzz(fakeSystem(TARGETS.remap!), { target: TARGETS.remap!, ops: 0, seed: 1234, replay: { steps: failing.steps } });
    expect(report.passed).toBe(true);
  });
});

describe('the racing-fault and unload operations', () => {
  /** How often each operation ran in a fuzz of the fake (shrinking included). */
  const ran = (report: FuzzReport, op: string): number => report.timing?.ops[op]?.count ?? 0;

  it('race: runs on a writable device, rounds of racing faults, each page checked against the pattern the model wrote', () => {
    const system = fakeSystem(TARGETS.fault!);
    const report = runFuzz(system, { target: TARGETS.fault!, ops: 1500, seed: 42 });
    expect(report.failure?.error).toBeUndefined();
    expect(ran(report, 'race')).toBeGreaterThan(0);
    expect(system.races).toHaveLength(ran(report, 'race'));
    expect(system.races.every((options) => options.minOverlaps === RACE_MIN_OVERLAPS && options.timeLimitMs === RACE_TIME_LIMIT_MS)).toBe(true);
    expect([system.liveFds, system.livePages]).toEqual([0, 0]);
  });

  it('race: a replay asks for many more overlapping faults and a longer cap than the search, so that a recorded race shows again', () => {
    const system = fakeSystem(TARGETS.fault!);
    const race = { op: 'race', off: 'first', len: 2, workers: 2, access: 'read' } as const;
    const report = runFuzz(system, { target: TARGETS.fault!, ops: 0, seed: 1, replay: { steps: [race, race] } });
    expect(report.failure?.error).toBeUndefined();
    expect(system.races.map(({ minOverlaps, timeLimitMs }) => [minOverlaps, timeLimitMs])).toEqual([
      [RACE_REPLAY_MIN_OVERLAPS, RACE_REPLAY_TIME_LIMIT_MS],
      [RACE_REPLAY_MIN_OVERLAPS, RACE_REPLAY_TIME_LIMIT_MS],
    ]);
    expect(RACE_REPLAY_MIN_OVERLAPS).toBeGreaterThan(RACE_MIN_OVERLAPS);
    expect(RACE_REPLAY_TIME_LIMIT_MS).toBeGreaterThan(RACE_TIME_LIMIT_MS);
  });

  it('race: its fork refused with ENOMEM is allowed only while a private mapping has its first page copied (catalogue E3)', () => {
    const refusingFork = (): ReturnType<typeof fakeSystem> => {
      const system = fakeSystem(TARGETS.remap!);
      // The fake has no PAT: its raceFaults refuses the fork as the kernel does in that state.
      system.raceFaults = () => {
        throw Object.assign(new Error('ENOMEM: not enough memory, fork'), { code: 'ENOMEM' });
      };
      return system;
    };
    const race = { op: 'race', off: 'first', len: 2, workers: 2, access: 'read' } as const;
    const copied = [{ op: 'mmap', fd: 0, off: 'first', len: 1, prot: 'rw', shared: false }, { op: 'write', slot: 0, page: 'first', at: 'first', len: 1, byte: 0 }] as const;
    const after = runFuzz(refusingFork(), { target: TARGETS.remap!, ops: 0, seed: 1, replay: { steps: [...copied, race] } });
    expect(after.failure?.error).toBeUndefined();
    const without = runFuzz(refusingFork(), { target: TARGETS.remap!, ops: 0, seed: 1, replay: { steps: [race] } });
    expect(without.failure?.error).toMatch(/^race\(.*\): ENOMEM; allowed: ok /);
  });

  it('race: never generated for a device the fuzz cannot write (the concurrency cases need a writer)', () => {
    const steps = fc.sample(stepArbitrary(TARGETS.ro!, PAGE), { numRuns: 2000, seed: 3 });
    expect(steps.some((step) => step.op === 'read')).toBe(true);
    expect(steps.some((step) => step.op === 'race')).toBe(false);
    const fault = fc.sample(stepArbitrary(TARGETS.fault!, PAGE), { numRuns: 2000, seed: 3 });
    expect(fault.filter((step) => step.op === 'race').length).toBeGreaterThan(5);
  });

  it('unload: generated only for a profile that names a module, refused while a mapping outlives its fd', () => {
    expect(fc.sample(stepArbitrary(TARGETS.offset!, PAGE), { numRuns: 2000, seed: 3 }).some((step) => step.op === 'unload')).toBe(false);
    const system = fakeSystem(TARGETS.remap!);
    const report = runFuzz(system, { target: TARGETS.remap!, ops: 3000, seed: 42 });
    expect(report.failure?.error).toBeUndefined();
    expect(ran(report, 'unload')).toBeGreaterThan(0);
    expect(system.loads).toBe(0);
  });

  it('unload: an unload that succeeds leaves the mappings mapped, loads the module again, and the next sequences run', () => {
    const system = fakeSystem(TARGETS.remap!, 'noowner');
    const report = runFuzz(system, { target: TARGETS.remap!, ops: 3000, seed: 1234 });
    expect(report.failure?.steps.at(-1)?.op).toBe('unload');
    // Loaded again after the first success and after every one while shrinking: shrinking ran sequences.
    expect(system.loads).toBeGreaterThan(1);
    expect(report.shrinkOps).toBeGreaterThan(0);
    // Never unmapped: their munmap would run the freed module's code.
    expect(system.livePages).toBeGreaterThan(0);
    expect(system.liveFds).toBe(0);
  });

  it('unload: a module that does not load again stops the fuzz: no sequence runs after it', () => {
    const system = fakeSystem(TARGETS.remap!, 'noowner');
    system.loadModule = () => {
      throw new Error('insmod /fake.ko failed (status 1)');
    };
    const report = runFuzz(system, { target: TARGETS.remap!, ops: 3000, seed: 1234 });
    expect(report.failure?.error).toMatch(/the module was not loaded again \(insmod \/fake\.ko failed \(status 1\)\): the fuzz stops$/);
    expect(report.shrinkOps).toBe(0);
  });

  it('race: a wrong page is reported on every attempt of a step, at most a few listed', () => {
    const report = runFuzz(fakeSystem(TARGETS.fault!, 'racyfault'), { target: TARGETS.fault!, ops: 0, seed: 1, replay: { steps: [{ op: 'race', off: 'first', len: 4, workers: 2, access: 'read' }] } });
    expect(report.failure?.error).toBe(
      "race(off=first len=4 workers=2 access=read): threads faulting distinct pages at the same moment saw a page holding another page's index (catalogue J7, taxonomy #19): worker 1 round 0: region page 1 held 0 (512 words wrong)",
    );
    expect(RACE_ROUNDS).toBeGreaterThan(1);
  });

  it('pagePattern(): every 8-byte word of page p holds its region page, little-endian', () => {
    const bytes = pagePattern(5, 2, PAGE);
    const view = new DataView(bytes.buffer);
    expect(bytes.length).toBe(2 * PAGE);
    expect([view.getBigUint64(0, true), view.getBigUint64(PAGE - 8, true), view.getBigUint64(PAGE, true), view.getBigUint64(2 * PAGE - 8, true)]).toEqual([5n, 5n, 6n, 6n]);
  });
});

describe('the edges a step names', () => {
  it('edge(): first, last, one past the end, 2^32 pages, a number modulo the count', () => {
    expect(['first', 'last', 'end', 'huge', 21].map((choice) => edge(choice, 16))).toEqual([0, 15, 16, 2 ** 32, 5]);
  });

  it('mapLength(): zero, one byte, to the end, one page past it, the whole region, a capped page count', () => {
    expect(['zero', 'byte', 'rest', 'past', 'whole', 3, 1000].map((choice) => mapLength(choice, 4, 16, PAGE) / PAGE)).toEqual([
      0,
      1 / PAGE,
      4,
      5,
      16,
      3,
      MAX_MAP_PAGES,
    ]);
  });
});
