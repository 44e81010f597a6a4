/**
 * The names of what a run leaves under build/ (runs/, trace/, bench/):
 * "YYYYMMDD-HHMMSS" in UTC first, so that a directory listing sorts by time
 * (tools/qemu/run-dir.ts prunes the oldest runs by that order).
 */

/** `now` as "YYYYMMDD-HHMMSS", UTC. */
export function runStamp(now: Date = new Date()): string {
  return now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/**
 * "YYYYMMDD-HHMMSS-PID-TAG": the process id and the tag keep apart the runs
 * that start in the same second (a test's workers, several kernels).
 */
export function runName(tag: string, now: Date = new Date(), pid: number = process.pid): string {
  return `${runStamp(now)}-${pid}-${tag}`;
}
