/**
 * Each guest session's directory under build/runs/: its console log, the
 * QEMU command line, out/ (the one host directory the guest may write),
 * inputs/ (copies of the files the run names outside the shared trees,
 * guest-view.ts), and whatever else the run keeps (the ivshmem memory file,
 * test results). Only the newest KEEP_RUNS directories are kept.
 */
import { chownSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { RUNS_DIR } from '../paths.js';
import { runName } from '../run-name.js';

const KEEP_RUNS = 20;

export interface RunDir {
  dir: string;
  /** Everything the guest printed on its serial console. */
  consoleLog: string;
  /** Shared with the guest (9p, mount tag "out"). */
  outputDir: string;
  /** Where stageInputs (guest-view.ts) copies the run's files; made only when there are some. */
  inputsDir: string;
}

/**
 * A new, empty run directory; the oldest are removed so that this one is the
 * KEEP_RUNS-th. With `writer` (the user an unprivileged QEMU runs as), out/
 * belongs to that user: the guest's writes reach it through QEMU.
 */
export function newRunDir(writer?: { uid: number; gid: number }): RunDir {
  mkdirSync(RUNS_DIR, { recursive: true });
  // Names start with the time (tools/run-name.ts), so sorting them sorts by age.
  const old = readdirSync(RUNS_DIR).sort();
  for (const stale of old.slice(0, Math.max(0, old.length - KEEP_RUNS + 1))) {
    rmSync(path.join(RUNS_DIR, stale), { recursive: true, force: true });
  }
  const dir = path.join(RUNS_DIR, runName(Math.random().toString(36).slice(2, 6)));
  const outputDir = path.join(dir, 'out');
  mkdirSync(outputDir, { recursive: true });
  if (writer !== undefined) chownSync(outputDir, writer.uid, writer.gid);
  return { dir, consoleLog: path.join(dir, 'console.log'), outputDir, inputsDir: path.join(dir, 'inputs') };
}
