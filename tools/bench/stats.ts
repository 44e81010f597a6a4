/** Median and spread of a figure's repeated samples. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** First and third quartiles (linear interpolation between samples). */
  q1: number;
  q3: number;
  /**
   * (q3 - q1) / median, the interquartile range relative to the median: 0
   * when the middle half of the samples agree. Unlike (max - min) it is not
   * blown up by the one sample that another process on the host disturbed.
   */
  spread: number;
  samples: number;
}

/** The q-quantile (0..1) of sorted values, interpolating between neighbours. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  const high = Math.ceil(at);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (at - low);
}

export function median(values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const med = quantile(sorted, 0.5);
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  return {
    median: med,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    q1,
    q3,
    spread: med === 0 ? 0 : (q3 - q1) / med,
    samples: values.length,
  };
}
