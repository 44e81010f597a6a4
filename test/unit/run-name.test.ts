// The names of what a run leaves under build/ (tools/run-name.ts): time first, so that they sort by age.
import { describe, expect, it } from 'vitest';
import { runName, runStamp } from '../../tools/run-name.js';

describe('runStamp', () => {
  it('writes the UTC time as YYYYMMDD-HHMMSS', () => {
    expect(runStamp(new Date('2026-01-02T03:04:05.678Z'))).toBe('20260102-030405');
    expect(runStamp(new Date('2026-11-22T23:59:59.999Z'))).toBe('20261122-235959');
  });

  it('sorts as the times do', () => {
    const times = ['2026-12-31T23:59:59Z', '2026-01-01T00:00:00Z', '2026-06-15T12:00:00Z', '2027-01-01T00:00:00Z'];
    const stamps = times.map((time) => runStamp(new Date(time)));
    expect([...stamps].sort()).toEqual([stamps[1], stamps[2], stamps[0], stamps[3]]);
  });
});

describe('runName', () => {
  it('is the stamp, the process id and the tag', () => {
    expect(runName('touch-mmapkit-remap', new Date('2026-01-02T03:04:05Z'), 4242)).toBe('20260102-030405-4242-touch-mmapkit-remap');
  });

  it('takes this process and the current time by default', () => {
    const before = runStamp();
    const name = runName('x');
    expect(name).toMatch(new RegExp(`^\\d{8}-\\d{6}-${process.pid}-x$`));
    expect(name.slice(0, 15) >= before).toBe(true);
  });
});
