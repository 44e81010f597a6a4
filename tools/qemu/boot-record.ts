/**
 * The last boot time measured on this machine, per guest kernel release:
 * what the next boot's deadline scales with (deadlines.ts). Kept in build/
 * (one small JSON file, written atomically, so that runs sharing a checkout
 * never read half of one). A missing or unreadable record means "not
 * measured yet": the floor applies.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BUILD_DIR } from '../paths.js';
import { replaceAtomically } from './atomic-file.js';

const RECORD = path.join(BUILD_DIR, 'boot-seconds.json');

type BootTimes = Record<string, number>;

function readRecord(file: string): BootTimes {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as BootTimes) : {};
  } catch {
    return {};
  }
}

/** Seconds from QEMU start to guest agent ready at the last boot of `release` here, if any. */
export function lastBootSeconds(release: string, file = RECORD): number | undefined {
  const seconds = readRecord(file)[release];
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
}

/** Records a boot of `release` that reached the guest agent in `seconds`. */
export function recordBootSeconds(release: string, seconds: number, file = RECORD): void {
  mkdirSync(path.dirname(file), { recursive: true });
  replaceAtomically(file, Buffer.from(`${JSON.stringify({ ...readRecord(file), [release]: seconds }, null, 2)}\n`));
}
