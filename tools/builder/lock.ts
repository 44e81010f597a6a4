/**
 * One build at a time in a checkout. Two commands that both find the module
 * (or the addon, the agent bundle, a fixture) stale would otherwise run Kbuild
 * in the same directory at once and read each other's half-written objects.
 *
 * The lock is flock(2) on build/build.lock, held by a small holder process
 * (flock(1) and cat) whose stdin is a pipe from us: however mmapkit ends,
 * even killed with SIGKILL, the pipe closes, the holder exits and the kernel
 * drops the lock. No stale lock file can outlive its owner, so nothing needs
 * breaking by hand.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { SetupError } from '../exit-codes.js';
import { BUILD_DIR } from '../paths.js';

export const BUILD_LOCK = path.join(BUILD_DIR, 'build.lock');

/**
 * Takes the lock on fd 9 (saying "waiting" first when another process holds
 * it), says "locked", then keeps fd 9 open in cat until its stdin closes.
 */
const HOLDER = 'exec 9>>"$1" || exit 3; flock -n 9 || { echo waiting; flock 9 || exit 3; }; echo locked; exec cat >/dev/null';

/**
 * Runs `work` while holding the lock on `file`. A caller that has to wait
 * says so once, through `log`. Not reentrant: `work` must not take the same
 * lock again (it would wait for itself).
 */
export async function withLock<T>(file: string, log: (line: string) => void, work: () => Promise<T>): Promise<T> {
  mkdirSync(path.dirname(file), { recursive: true });
  const holder = spawn('sh', ['-c', HOLDER, 'sh', file], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => holder.on('close', resolve));
  await new Promise<void>((resolve, reject) => {
    holder.on('error', (error) => reject(new SetupError(`cannot start the lock holder for ${file}: ${error.message}`)));
    void exited.then((code) => reject(new SetupError(`cannot lock ${file} (flock exit ${String(code)}; flock is part of util-linux)`)));
    createInterface({ input: holder.stdout }).on('line', (line) => {
      if (line === 'waiting') log(`build: waiting for another mmapkit build in this checkout to finish (lock ${file})`);
      if (line === 'locked') resolve();
    });
  });
  try {
    return await work();
  } finally {
    holder.stdin.end();
    await exited;
  }
}

/** The build lock of this checkout (BUILD_LOCK), for every step that writes build output. */
export const withBuildLock = <T>(log: (line: string) => void, work: () => Promise<T>): Promise<T> => withLock(BUILD_LOCK, log, work);
