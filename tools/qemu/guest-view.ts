/**
 * What the guest sees of the host, and nothing more. The code under test is a
 * kernel module running as root in the guest, so the guest gets only what its
 * programs and the run need, read-only:
 * - /usr (Debian 12 is merged-/usr: node, python3, bash, kmod, their
 *   libraries, and the guest kernel's modules under /usr/lib/modules);
 * - the checkout (the agent bundle, the addon, the modules built for the guest);
 * - copies of the files the run names outside those two trees (a profile's
 *   module under /root, /tmp or /home), in the run's inputs/ directory, which
 *   the guest sees at their host paths;
 * - the run's out/ directory, the one share it may write.
 * Its root is a tmpfs that guest/init.sh fills from the skeleton made here:
 * the /bin, /lib, ... links into /usr, and a generated /etc. /etc, /home,
 * /root, /var and everything else of the host stay out of reach.
 */
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { SetupError } from '../exit-codes.js';
import { REPO_ROOT } from '../paths.js';
import type { CpioEntry } from './cpio.js';

/** A host directory shared with the guest over 9p, mounted by guest/init.sh by its tag. */
export interface GuestShare {
  tag: 'usr' | 'checkout' | 'inputs' | 'out';
  path: string;
  writable: boolean;
}

export const HOST_USR = '/usr';

/** Where the guest mounts the inputs share; each file in it also appears at its host path. */
export const GUEST_INPUTS_DIR = '/run/mmapkit-inputs';

/** The top-level directories that a merged-/usr system makes links into /usr. */
const USR_LINKS = ['bin', 'sbin', 'lib', 'lib64'];

const isUnder = (file: string, dir: string): boolean => {
  const relative = path.relative(dir, file);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
};

/** True when the guest sees this host file through a shared tree (/usr or the checkout), with no copy made. */
export const inSharedTree = (file: string, checkout = REPO_ROOT): boolean => isUnder(file, HOST_USR) || isUnder(file, checkout);

/**
 * Copies the files among `files` that lie outside the shared trees into
 * `inputsDir`, each at its absolute host path below it (/root/x/a.ko becomes
 * inputsDir/root/x/a.ko): the user's own files keep their modes, and QEMU,
 * which reads the copies as an unprivileged user, needs only these. Inside,
 * everything is readable; inputsDir itself is open to this process's user
 * and to `readerGid` (QEMU's group) only. Returns the host paths copied.
 */
export function stageInputs(files: readonly string[], inputsDir: string, readerGid?: number, checkout = REPO_ROOT): string[] {
  const staged = [...new Set(files.map((file) => path.resolve(file)))].filter((file) => !inSharedTree(file, checkout));
  for (const file of staged) {
    const copy = path.join(inputsDir, file);
    mkdirSync(path.dirname(copy), { recursive: true, mode: 0o755 });
    copyFileSync(file, copy);
    chmodSync(copy, 0o444);
  }
  // mkdirSync's mode is masked by the umask: make every level searchable whatever it is.
  for (const file of staged) {
    for (let dir = path.dirname(path.join(inputsDir, file)); isUnder(dir, inputsDir) && dir !== inputsDir; dir = path.dirname(dir)) chmodSync(dir, 0o755);
  }
  if (staged.length > 0) {
    if (readerGid !== undefined) chownSync(inputsDir, process.getuid?.() ?? -1, readerGid);
    chmodSync(inputsDir, readerGid !== undefined ? 0o750 : 0o700);
  }
  return staged;
}

/** The shares of one run, in the order guest/init.sh mounts them. */
export function guestShares(run: { outputDir: string; inputsDir?: string }, checkout = REPO_ROOT): GuestShare[] {
  return [
    { tag: 'usr', path: HOST_USR, writable: false },
    { tag: 'checkout', path: checkout, writable: false },
    ...(run.inputsDir !== undefined ? [{ tag: 'inputs' as const, path: run.inputsDir, writable: false }] : []),
    { tag: 'out', path: run.outputDir, writable: true },
  ];
}

/**
 * The guest root's skeleton, which init.sh copies onto its tmpfs root: the
 * mount points, the host's /bin, /sbin, /lib, /lib64 links into /usr, and an
 * /etc of its own. passwd and group name root (and nobody) so that bash and
 * ls show names; ld.so.cache is the host's index of the libraries under /usr,
 * which spares the dynamic linker a search of every directory over 9p.
 */
export function guestRootSkeleton(host = '/'): CpioEntry[] {
  const links = USR_LINKS.filter((name) => lstatSync(path.join(host, name), { throwIfNoEntry: false }) !== undefined).map((name): CpioEntry => {
    const at = path.join(host, name);
    const target = lstatSync(at).isSymbolicLink() ? readlinkSync(at) : '';
    if (path.normalize(target) !== `usr/${name}` && path.normalize(target) !== `/usr/${name}`) {
      throw new SetupError(`${at} is not a link into /usr: the guest shares only /usr, which needs a merged-/usr host (Debian 12)`);
    }
    return { type: 'symlink', path: name, target: `usr/${name}` };
  });
  const cache = path.join(host, 'etc', 'ld.so.cache');
  const text = (value: string): Buffer => Buffer.from(value);
  return [
    ...['usr', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root', 'var', 'var/tmp'].map((dir): CpioEntry => ({ type: 'dir', path: dir, mode: 0o755 })),
    ...links,
    { type: 'file', path: 'etc/passwd', mode: 0o644, data: text('root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n') },
    { type: 'file', path: 'etc/group', mode: 0o644, data: text('root:x:0:\nnogroup:x:65534:\n') },
    ...(existsSync(cache) ? [{ type: 'file' as const, path: 'etc/ld.so.cache', mode: 0o644, data: readFileSync(cache) }] : []),
    { type: 'symlink', path: 'etc/mtab', target: '/proc/self/mounts' },
  ];
}

/**
 * The files the guest must read from the checkout, each readable by `others`
 * along its whole path from the checkout down: an unprivileged QEMU reads
 * them with no rights of its own there (tools/qemu/qemu-user.ts). Only the
 * checkout's parents do not count: QEMU opens the share's directory before it
 * drops root, so a checkout may sit in a private home directory.
 */
export function checkReadableByOthers(files: readonly string[], user: string, checkout = REPO_ROOT): void {
  for (const file of files) {
    if (!isUnder(file, checkout) || !existsSync(file)) continue;
    for (let at = file; isUnder(at, checkout); at = path.dirname(at)) {
      const { mode } = statSync(at);
      const need = at === file ? 0o004 : 0o001;
      if ((mode & need) === 0) {
        throw new SetupError(
          `QEMU runs as ${user}, which cannot read ${path.relative(checkout, file)} (${path.relative(checkout, at)} is mode ${(mode & 0o777).toString(8)}): ` +
            'the checkout must be readable by others (umask 022)',
        );
      }
    }
  }
}
