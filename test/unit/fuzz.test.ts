/**
 * The model of `mmapkit fuzz` (guest/fuzz-model.ts, guest/fuzz.ts) against
 * a fake driver (fuzz-fake.ts): a correct one passes whatever the seed, and
 * each planted bug fails with a short shrunk sequence that both replays
 * (the recorded steps, fast-check's seed and path) reproduce.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MAP_PAGES, edge, mapLength } from '../../guest/fuzz-model.js';
import { FIRST_SEQUENCE, runFuzz } from '../../guest/fuzz.js';
import type { FuzzReport, FuzzTarget } from '../../guest/fuzz-types.js';
import { type FakeBug, fakeSystem } from './fuzz-fake.js';

const PAGE = 4096;

/** Shaped as the reference driver's remap, fault and read-only profiles (test/profiles/), over 16 pages. */
const TARGETS: Record<string, FuzzTarget> = {
  remap: { name: 'remap', device: '/dev/fake', size: 16 * PAGE, offset: 0, writable: true, initial: 'zero', private: 'cow', readWrite: true },
  fault: { name: 'fault', device: '/dev/fake', size: 16 * PAGE, offset: 0, writable: true, initial: 'zero', private: 'rejected', readWrite: true },
  ro: { name: 'ro', device: '/dev/fake', size: 16 * PAGE, offset: 0, writable: false, initial: 'zero', private: 'rejected', readWrite: false },
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
