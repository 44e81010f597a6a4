/**
 * Restoring a saved guest instead of booting one (docs/benchmarks.md, "The
 * tool itself", third round). guest/init.sh, with mmapkit.hold=1, stops
 * after its module loads, before the first 9p mount (QEMU refuses to
 * migrate a guest with a 9p share mounted), says "snapshot point" on the
 * console and waits for the host's go line. The first such boot with no
 * saved state is saved there (stop, migrate to the host, continue); later
 * guests start with the same command line and `-incoming fd:3` reading that
 * state. What the saved state depends on is in its key: the whole command
 * line once the run's own paths are taken out, and the kernel image, the
 * initramfs and the QEMU binary (path, size, modification time). A state
 * that cannot be restored is removed and the guest booted cold.
 */
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

/** The console line guest/init.sh prints at the save point. */
export const SNAPSHOT_POINT = 'mmapkit-init: snapshot point';

/**
 * MMAPKIT_SNAPSHOT=1 restores saved guests; off by default until the whole
 * suite has passed with it (docs/benchmarks.md, third round).
 */
export function snapshotsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.MMAPKIT_SNAPSHOT === '1';
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
  /** Files the saved state depends on by content: the kernel image, the initramfs, the QEMU binary. */
  files: readonly string[];
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
  return hash.digest('hex').slice(0, 16);
}

const PREFIX = 'snapshot-';
const SUFFIX = '.state';

/** The saved state of `key`, kept beside the kernel's other cached boot files. */
export const snapshotFile = (cacheDir: string, key: string): string => path.join(cacheDir, `${PREFIX}${key}${SUFFIX}`);

/**
 * Removes the kernel's other saved states (each is the guest's whole memory,
 * 0.5 GB): a changed initramfs or command line leaves the old one unusable.
 * A guest restoring from one keeps reading its open file.
 */
export function removeOtherSnapshots(cacheDir: string, keep: string): void {
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith(PREFIX) && (name.endsWith(SUFFIX) || name.endsWith('.partial')) && path.join(cacheDir, name) !== keep && !name.startsWith(`${path.basename(keep)}.`)) {
      rmSync(path.join(cacheDir, name), { force: true });
    }
  }
}
