/**
 * Restoring a saved guest instead of booting one (docs/benchmarks.md, "The
 * tool itself", third round). guest/init.sh, with mmapkit.hold=1, stops
 * after its module loads, with the guest agent started from copies of its
 * runtime (agent-runtime.ts) but no 9p share mounted (QEMU refuses to
 * migrate a guest with one mounted), says "snapshot point" on the console
 * and waits for the host's go line. The first such boot with no
 * saved state is saved there (stop, migrate to the host, continue); later
 * guests start with the same command line and `-incoming fd:3` reading that
 * state. What the saved state depends on is in its key: the whole command
 * line once the run's own paths are taken out, the kernel image, the
 * initramfs, the QEMU binary, node and its libraries (path, size,
 * modification time), the agent's bundle and the addon (their bytes). A state
 * that cannot be restored is removed and the guest booted cold.
 */
import { createHash } from 'node:crypto';
import { futimesSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../exit-codes.js';

/** The console line guest/init.sh prints at the save point. */
export const SNAPSHOT_POINT = 'mmapkit-init: snapshot point';

/**
 * Saved guests are restored unless MMAPKIT_SNAPSHOT=0: a restored guest is up
 * in about 0.4x the time of a boot (docs/benchmarks.md, "Third round").
 */
export function snapshotsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const asked = env.MMAPKIT_SNAPSHOT;
  if (asked === undefined || asked === '' || asked === '1') return true;
  if (asked === '0') return false;
  throw new UserError(`MMAPKIT_SNAPSHOT=${asked}: takes 1 (restore saved guests, the default) or 0 (boot every guest)`);
}

/** What a file is, cheaply: a changed file (a rebuilt initramfs, an upgraded QEMU) changes the key. */
function fileIdentity(file: string): string {
  const stat = statSync(file);
  return `${path.resolve(file)}:${stat.size}:${stat.mtimeMs}`;
}

/** The QEMU binary's path, looked up on PATH as spawn does. */
export function resolveBinary(binary: string, env: NodeJS.ProcessEnv = process.env): string {
  if (binary.includes('/')) return binary;
  for (const dir of (env.PATH ?? '').split(':')) {
    const candidate = path.join(dir || '.', binary);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`${binary} not found on PATH`);
}

export interface SnapshotKeyInputs {
  /** The QEMU command line, binary first, without -incoming. */
  command: readonly string[];
  /** Per-run strings (run directory, temp directory) that the saved state does not depend on. */
  runPaths: readonly string[];
  /** Files the saved state depends on, known by path, size and modification time: the kernel image, the initramfs, the QEMU binary, node and its libraries. */
  files: readonly string[];
  /** Small files it depends on by their bytes: the agent's bundle and the addon, which a rebuild may rewrite unchanged. */
  contents?: readonly string[];
}

/** The key of the saved state a command line can restore; 16 hex digits. */
export function snapshotKey(inputs: SnapshotKeyInputs): string {
  const hash = createHash('sha256');
  const paths = [...inputs.runPaths].filter((p) => p !== '').sort((a, b) => b.length - a.length);
  for (const arg of inputs.command) {
    let normal = arg;
    for (const runPath of paths) normal = normal.split(runPath).join('<run>');
    hash.update(`${normal}\0`);
  }
  for (const file of inputs.files) hash.update(`${fileIdentity(file)}\0`);
  for (const file of inputs.contents ?? []) hash.update(readFileSync(file)).update('\0');
  return hash.digest('hex').slice(0, 16);
}

const PREFIX = 'snapshot-';
const SUFFIX = '.state';

/** The saved state of `key`, kept beside the kernel's other cached boot files. */
export const snapshotFile = (cacheDir: string, key: string): string => path.join(cacheDir, `${PREFIX}${key}${SUFFIX}`);

/**
 * The saved state, open for QEMU to read, and marked as used now (its
 * modification time, which pruneSnapshots keeps the newest by); undefined
 * when there is none, or another process has just removed it.
 */
export function openSnapshot(file: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const now = new Date();
  try {
    futimesSync(fd, now, now);
  } catch {
    // Not ours to touch (another user's checkout): it is only pruned sooner.
  }
  return fd;
}

/**
 * How many saved states a kernel keeps: one per command line in use (make test
 * boots guests of one vCPU and of two; a bench variant adds its own), each
 * the guest's whole memory, 0.5 GB.
 */
export const SNAPSHOTS_KEPT = 4;

/** A staged state older than this is left over from a save that never finished (its process was killed). */
const STALE_PARTIAL_MS = 10 * 60_000;

/**
 * Keeps `keep` and the kernel's most recently used other states, SNAPSHOTS_KEPT
 * in all (a restore marks its state used: openSnapshot), and removes the rest and
 * any staged state left over from a save that never finished. A guest
 * restoring from a removed state keeps reading its open file.
 */
export function pruneSnapshots(cacheDir: string, keep: string, now: number = Date.now()): void {
  const states: { file: string; used: number }[] = [];
  for (const name of readdirSync(cacheDir)) {
    if (!name.startsWith(PREFIX)) continue;
    const file = path.join(cacheDir, name);
    let used: number;
    try {
      used = statSync(file).mtimeMs;
    } catch {
      continue; // removed by another process meanwhile
    }
    if (name.endsWith('.partial')) {
      if (now - used > STALE_PARTIAL_MS) rmSync(file, { force: true });
    } else if (name.endsWith(SUFFIX) && file !== keep) {
      states.push({ file, used });
    }
  }
  states.sort((a, b) => b.used - a.used);
  for (const { file } of states.slice(SNAPSHOTS_KEPT - 1)) rmSync(file, { force: true });
}
