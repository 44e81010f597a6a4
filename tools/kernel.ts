/**
 * The one place that knows which guest kernel we run: its image in /boot,
 * the matching headers tree in /usr/src and its modules in /lib/modules.
 * The host's own kernel (`uname -r`) is never consulted: it is not the
 * kernel the module runs on, and this host has no /lib/modules for it.
 *
 * Two kinds of failure, two exit codes. A value the user gave that names
 * nothing usable (a release or image that is not there, a series `make
 * setup` does not install, a --kdir that is no headers tree or is for another
 * release) is bad usage: UserError, exit 2. What `make setup` installs but is
 * missing (the default kernel, a supported series, the headers or modules of
 * a chosen kernel) is a missing prerequisite: SetupError, exit 3.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SetupError, UserError } from './exit-codes.js';

export interface GuestKernel {
  /** The kernel release, as `uname -r` prints it inside the guest. */
  version: string;
  /** The release's series, its first two numbers: "6.1", "6.12". */
  series: string;
  /** The bzImage (vmlinuz). */
  image: string;
  /** The headers tree Kbuild builds external modules against. */
  headers: string;
  /** /lib/modules/<version>, where the guest's own modules come from. */
  modules: string;
}

export interface KernelQuery {
  /**
   * A series ("6.12": the newest installed release of it), a kernel release
   * ("6.1.0-56-amd64") or a path to a vmlinuz. Default: the newest installed
   * release of DEFAULT_SERIES.
   */
  kernel?: string;
  /** A headers tree to use instead of /usr/src/linux-headers-<version>. */
  kdir?: string;
  /** Prefix for /boot, /usr/src and /lib/modules; tests point it at a fake tree. */
  root?: string;
  /** The option that named `kernel`, for messages (default --kernel). */
  option?: string;
}

const IMAGE_PREFIX = 'vmlinuz-';

/**
 * The series used when no --kernel is given: bookworm's own kernel, which
 * linux-image-amd64 keeps current. Other series (6.12 from bookworm-security
 * or -backports, see tools/setup.sh) are used only when asked for, so that
 * installing one does not silently change what `make run` tests.
 */
export const DEFAULT_SERIES = '6.1';

/**
 * The series `make setup` installs and `--kernels all` runs on. Any other
 * installed series (a newer Debian kernel, the host's own) is used only when
 * named: a third kernel on the machine must not change what `make test` does.
 */
export const SUPPORTED_SERIES: readonly string[] = [DEFAULT_SERIES, '6.12'];

/**
 * The guest's page size, for the host tools that need it before any guest
 * is up (profile checks, bench sizes): every kernel booted is a Debian amd64
 * one, and x86-64 pages are 4 KiB. Code in the guest asks the addon instead
 * (pageSize()).
 */
export const PAGE_SIZE = 4096;

const SERIES = /^\d+\.\d+$/;

/** Whether a --kernel value names a series ("6.12") rather than a release or a path. */
export const isSeries = (value: string): boolean => SERIES.test(value);

/** A release's series: "6.12" for 6.12.117+deb12-amd64, "6.1" for 6.1.0-56-amd64. */
export function seriesOf(release: string): string {
  const match = /^(\d+)\.(\d+)/.exec(release);
  if (match === null) throw new UserError(`cannot tell the series of kernel release '${release}': expected it to start with two numbers, as 6.1.0-56-amd64 does`);
  return `${match[1]}.${match[2]}`;
}

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

/** The series that have an image in /boot, oldest first: ["6.1", "6.12"]. */
export function installedSeries(root = '/'): string[] {
  const series = installedReleases(root)
    .filter((release) => /^\d+\.\d+/.test(release))
    .map(seriesOf);
  return [...new Set(series)].sort(compareReleases);
}

/**
 * The newest installed release of a series. Missing, a series `make setup`
 * installs is a SetupError that says so; any other is a bad value (`option`).
 */
export function newestOfSeries(series: string, root = '/', option = '--kernel'): string {
  const newest = installedReleases(root)
    .filter((release) => /^\d+\.\d+/.test(release) && seriesOf(release) === series)
    .at(-1);
  if (newest === undefined) {
    const known = installedSeries(root);
    const installed = known.length > 0 ? ` (installed: ${known.join(', ')})` : '';
    if (SUPPORTED_SERIES.includes(series)) throw new SetupError(`no ${series} kernel installed: run \`make setup\`${installed}`);
    throw new UserError(`${option} ${series}: no ${series} kernel installed${installed}; \`make setup\` installs ${SUPPORTED_SERIES.join(' and ')}`);
  }
  return newest;
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
  const option = query.option ?? '--kernel';
  if (wanted !== undefined && wanted.includes('/')) {
    if (!existsSync(wanted) || !statSync(wanted).isFile()) {
      throw new UserError(`${option}: kernel image ${wanted} does not exist`);
    }
    const base = path.basename(wanted);
    if (!base.startsWith(IMAGE_PREFIX)) {
      throw new UserError(`${option}: cannot tell the release of ${wanted}: expected a file named vmlinuz-<release>`);
    }
    const version = base.slice(IMAGE_PREFIX.length);
    seriesOf(version); // a release without a series is refused before its headers are looked for
    return { version, image: wanted };
  }
  if (wanted === undefined || isSeries(wanted)) {
    const version = newestOfSeries(wanted ?? DEFAULT_SERIES, root, option);
    return { version, image: path.join(root, 'boot', IMAGE_PREFIX + version) };
  }
  const releases = installedReleases(root);
  if (!releases.includes(wanted)) {
    const known = releases.length > 0 ? releases.join(', ') : 'none';
    throw new UserError(`${option}: no kernel image /boot/vmlinuz-${wanted} (installed: ${known})`);
  }
  return { version: wanted, image: path.join(root, 'boot', IMAGE_PREFIX + wanted) };
}

function resolveHeaders(version: string, query: KernelQuery, root: string): string {
  if (query.kdir !== undefined) {
    // The user's tree: anything wrong with it is a bad --kdir.
    if (!existsSync(path.join(query.kdir, 'Makefile'))) throw new UserError(`--kdir: no kernel headers for ${version} at ${query.kdir} (no Makefile)`);
    const release = headersRelease(query.kdir);
    if (release !== undefined && release !== version) {
      throw new UserError(`--kdir: headers at ${query.kdir} are for ${release}, but the guest kernel is ${version}`);
    }
    return query.kdir;
  }
  const kdir = path.join(root, 'usr', 'src', `linux-headers-${version}`);
  if (!existsSync(path.join(kdir, 'Makefile'))) {
    throw new SetupError(`no kernel headers for ${version} at ${kdir}: run \`make setup\` (installs linux-headers-${version})`);
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
  return { version, series: seriesOf(version), image, headers, modules };
}

/**
 * Several guest kernels at once (`--kernels`): 'all' is the newest release of
 * every installed series of SUPPORTED_SERIES, oldest series first; a list names series, releases
 * or images, each resolved as `--kernel` is. A supported series that is not
 * installed is a SetupError ("no 6.12 kernel installed: run `make setup`");
 * a release or other series that is not installed is a bad --kernels value.
 */
export function discoverKernels(which: 'all' | readonly string[], query: Omit<KernelQuery, 'kernel' | 'kdir'> = {}): GuestKernel[] {
  const root = query.root ?? '/';
  const wanted = which === 'all' ? installedSeries(root).filter((series) => SUPPORTED_SERIES.includes(series)) : [...which];
  if (which === 'all' && wanted.length === 0) throw new SetupError('no guest kernel in /boot: run `make setup`');
  if (wanted.length === 0) throw new UserError('--kernels: no kernel named: give a series, a release or `all`');
  const kernels = wanted.map((kernel) => discoverKernel({ ...query, kernel, option: '--kernels' }));
  // "6.1,6.1.0-56-amd64" is one kernel, run once.
  return kernels.filter((kernel, index) => kernels.findIndex((other) => other.image === kernel.image) === index);
}
