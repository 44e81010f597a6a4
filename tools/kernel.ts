/**
 * The one place that knows which guest kernel we run: its image in /boot,
 * the matching headers tree in /usr/src and its modules in /lib/modules.
 * The host's own kernel (`uname -r`) is never consulted: it is not the
 * kernel the module runs on, and this host has no /lib/modules for it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SetupError } from './exit-codes.js';

export interface GuestKernel {
  /** The kernel release, as `uname -r` prints it inside the guest. */
  version: string;
  /** The bzImage (vmlinuz). */
  image: string;
  /** The headers tree Kbuild builds external modules against. */
  headers: string;
  /** /lib/modules/<version>, where the guest's own modules come from. */
  modules: string;
}

export interface KernelQuery {
  /** A kernel release ("6.1.0-56-amd64") or a path to a vmlinuz. */
  kernel?: string;
  /** A headers tree to use instead of /usr/src/linux-headers-<version>. */
  kdir?: string;
  /** Prefix for /boot, /usr/src and /lib/modules; tests point it at a fake tree. */
  root?: string;
}

const IMAGE_PREFIX = 'vmlinuz-';

/** Orders kernel releases by their numeric parts: 6.12.1 > 6.1.0-56 > 6.1.0-9. */
export function compareReleases(a: string, b: string): number {
  const numbers = (release: string): number[] => (release.match(/\d+/g) ?? []).map(Number);
  const left = numbers(a);
  const right = numbers(b);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? -1) - (right[i] ?? -1);
    if (difference !== 0) return difference;
  }
  return a.localeCompare(b);
}

export function installedReleases(root = '/'): string[] {
  const boot = path.join(root, 'boot');
  if (!existsSync(boot)) return [];
  return readdirSync(boot)
    .filter((name) => name.startsWith(IMAGE_PREFIX))
    .map((name) => name.slice(IMAGE_PREFIX.length))
    .sort(compareReleases);
}

/**
 * The release a headers tree builds modules for: UTS_RELEASE, which becomes
 * the module's vermagic. (Debian's include/config/kernel.release holds the
 * upstream version, 6.1.192, not the package release, so it cannot be used.)
 */
export function headersRelease(kdir: string): string | undefined {
  const file = path.join(kdir, 'include', 'generated', 'utsrelease.h');
  if (!existsSync(file)) return undefined;
  return /UTS_RELEASE\s+"([^"]+)"/.exec(readFileSync(file, 'utf8'))?.[1];
}

function resolveImage(query: KernelQuery, root: string): { version: string; image: string } {
  const wanted = query.kernel;
  if (wanted !== undefined && wanted.includes('/')) {
    if (!existsSync(wanted) || !statSync(wanted).isFile()) {
      throw new SetupError(`kernel image ${wanted} does not exist`);
    }
    const base = path.basename(wanted);
    if (!base.startsWith(IMAGE_PREFIX)) {
      throw new SetupError(`cannot tell the release of ${wanted}: expected a file named vmlinuz-<release>`);
    }
    return { version: base.slice(IMAGE_PREFIX.length), image: wanted };
  }
  const releases = installedReleases(root);
  if (wanted !== undefined) {
    if (!releases.includes(wanted)) {
      const known = releases.length > 0 ? releases.join(', ') : 'none';
      throw new SetupError(`no kernel image /boot/vmlinuz-${wanted} (installed: ${known})`);
    }
    return { version: wanted, image: path.join(root, 'boot', IMAGE_PREFIX + wanted) };
  }
  const newest = releases.at(-1);
  if (newest === undefined) {
    throw new SetupError('no guest kernel in /boot: run `make setup` (installs linux-image-amd64)');
  }
  return { version: newest, image: path.join(root, 'boot', IMAGE_PREFIX + newest) };
}

function resolveHeaders(version: string, query: KernelQuery, root: string): string {
  const kdir = query.kdir ?? path.join(root, 'usr', 'src', `linux-headers-${version}`);
  if (!existsSync(path.join(kdir, 'Makefile'))) {
    const hint = query.kdir === undefined ? ': run `make setup` (installs linux-headers-amd64)' : '';
    throw new SetupError(`no kernel headers for ${version} at ${kdir}${hint}`);
  }
  const release = headersRelease(kdir);
  if (release !== undefined && release !== version) {
    throw new SetupError(`headers at ${kdir} are for ${release}, but the guest kernel is ${version}`);
  }
  return kdir;
}

export function discoverKernel(query: KernelQuery = {}): GuestKernel {
  const root = query.root ?? '/';
  const { version, image } = resolveImage(query, root);
  const headers = resolveHeaders(version, query, root);
  const modules = path.join(root, 'lib', 'modules', version);
  if (!existsSync(modules)) {
    throw new SetupError(`no modules for ${version} at ${modules}: the guest needs its virtio and 9p modules`);
  }
  return { version, image, headers, modules };
}
