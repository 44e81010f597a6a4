/**
 * The machine's own baseline: a fixed piece of CPU-bound work on the host,
 * timed between the boots it stands beside, so that figures from different
 * machines (or from one machine under different load) compare as ratios to
 * it rather than as seconds.
 */
import { createHash } from 'node:crypto';

export const BASELINE_WORK = 'SHA-256 of 64 MiB in 1 MiB chunks, one host CPU';

const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);

/** One timing of the baseline work, ns. */
export function baselineSampleNs(): number {
  const start = process.hrtime.bigint();
  const hash = createHash('sha256');
  for (let i = 0; i < 64; i++) hash.update(CHUNK);
  hash.digest();
  return Number(process.hrtime.bigint() - start);
}
