// The host's deadlines scale with this machine's measured boot (tools/qemu/deadlines.ts) and never
// fall below what they were as constants; the last boot is kept per kernel release (boot-record.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lastBootSeconds, recordBootSeconds } from '../../tools/qemu/boot-record.js';
import {
  DEADLINE_FLOORS,
  REFERENCE_BOOT_S,
  REQUEST_DEADLINES_PER_CASE,
  bootDeadlineS,
  caseTimeoutMs,
  requestDeadlineS,
  scaledDeadlineS,
  slowdown,
} from '../../tools/qemu/deadlines.js';

describe('deadlines derived from the measured boot', () => {
  it('keep the floors on a machine as fast as the reference or faster, or when nothing was measured', () => {
    for (const boot of [undefined, 0, -1, Number.NaN, 1.2, REFERENCE_BOOT_S]) {
      expect(slowdown(boot)).toBe(1);
      expect(bootDeadlineS(undefined, boot)).toBe(DEADLINE_FLOORS.bootS);
      expect(requestDeadlineS(undefined, DEADLINE_FLOORS.conformanceRequestS, boot)).toBe(DEADLINE_FLOORS.conformanceRequestS);
    }
  });

  it('grow in proportion on a slower machine, in whole seconds rounded up', () => {
    expect(slowdown(REFERENCE_BOOT_S * 3)).toBeCloseTo(3);
    expect(bootDeadlineS(undefined, REFERENCE_BOOT_S * 3)).toBe(180);
    expect(requestDeadlineS(undefined, DEADLINE_FLOORS.requestS, REFERENCE_BOOT_S * 2)).toBe(120);
    // 16 s, a boot measured here while other VMs shared the two cores: 20 s * 16 / 5.8 = 55.2.
    expect(requestDeadlineS(undefined, DEADLINE_FLOORS.conformanceRequestS, 16)).toBe(56);
    expect(scaledDeadlineS(10, REFERENCE_BOOT_S * 1.01)).toBe(11);
  });

  it('never shorter than the floor, whatever was measured', () => {
    for (const boot of [0.1, 3, 5.8, 6, 30, 600]) {
      expect(bootDeadlineS(undefined, boot)).toBeGreaterThanOrEqual(DEADLINE_FLOORS.bootS);
      expect(requestDeadlineS(undefined, DEADLINE_FLOORS.requestS, boot)).toBeGreaterThanOrEqual(DEADLINE_FLOORS.requestS);
    }
  });

  it('give way to the one asked for (--boot-timeout, --request-timeout), shorter or longer', () => {
    expect(bootDeadlineS(0.5, 100)).toBe(0.5);
    expect(requestDeadlineS(500, DEADLINE_FLOORS.requestS, 100)).toBe(500);
  });

  it('give a conformance case room for several request deadlines, never less than the former 60 s', () => {
    expect(caseTimeoutMs(DEADLINE_FLOORS.conformanceRequestS)).toBe(60_000);
    expect(caseTimeoutMs(1)).toBe(60_000);
    expect(caseTimeoutMs(56)).toBe(56 * REQUEST_DEADLINES_PER_CASE * 1000);
    expect(caseTimeoutMs(56)).toBeGreaterThan(56_000);
  });
});

describe('the boot record', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  const recordFile = (): string => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-boot-record-'));
    return path.join(dir, 'build', 'boot-seconds.json');
  };

  it('keeps the last boot per release, and reads nothing before the first', () => {
    const file = recordFile();
    expect(lastBootSeconds('release-a', file)).toBeUndefined();
    recordBootSeconds('release-a', 7.5, file);
    recordBootSeconds('release-b', 9.25, file);
    recordBootSeconds('release-a', 6.5, file);
    expect(lastBootSeconds('release-a', file)).toBe(6.5);
    expect(lastBootSeconds('release-b', file)).toBe(9.25);
  });

  it.each(['not json', '[1]', '{"release-a": "fast"}', '{"release-a": -3}'])('reads an unusable record %j as no measurement', (text) => {
    const file = recordFile();
    recordBootSeconds('other', 1, file);
    writeFileSync(file, text);
    expect(lastBootSeconds('release-a', file)).toBeUndefined();
  });
});
