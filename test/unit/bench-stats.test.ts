import { describe, expect, it } from 'vitest';
import { median, quantile, summarize } from '../../tools/bench/stats.js';

describe('bench stats', () => {
  it('median of odd and even counts, unsorted input left alone', () => {
    const values = [5, 1, 3];
    expect(median(values)).toBe(3);
    expect(values).toEqual([5, 1, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow(RangeError);
  });

  it('quantiles interpolate between neighbours', () => {
    expect(quantile([10, 20, 30, 40, 50], 0.25)).toBe(20);
    expect(quantile([10, 20], 0.25)).toBe(12.5);
  });

  it('spread is the interquartile range over the median, unmoved by one wild sample', () => {
    const calm = summarize([100, 101, 99, 100, 100]);
    expect(calm).toMatchObject({ median: 100, min: 99, max: 101, samples: 5 });
    expect(calm.spread).toBe(0);
    const disturbed = summarize([100, 102, 98, 100, 5000]);
    expect(disturbed.median).toBe(100);
    expect(disturbed.max).toBe(5000);
    expect(disturbed.spread).toBeCloseTo(0.02);
    expect(summarize([0, 0]).spread).toBe(0);
  });
});
