// Guest kernel discovery (tools/kernel.ts) against fake /boot, /usr/src and
// /lib/modules trees built in a temporary directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import {
  DEFAULT_SERIES,
  compareReleases,
  discoverKernel,
  discoverKernels,
  headersRelease,
  installedReleases,
  installedSeries,
  seriesOf,
} from '../../tools/kernel.js';
import { userErrorOf } from './user-error.js';
import { scratchDir } from '../scratch-dir.js';

const OLD = '6.1.0-9-amd64';
const NEW = '6.1.0-56-amd64';
const TRIXIE = '6.12.48+deb13-amd64';
/** bookworm's 6.12 (bookworm-security and -backports). */
const BPO_OLD = '6.12.95+deb12-amd64';
const BPO = '6.12.117+deb12-amd64';
/** A series newer than any installed here, so never the default. */
const FUTURE = '9.9.1-amd64';

const scratch = scratchDir('mmapkit-kernel-test-');

interface FakeTree {
  /** Releases with a /boot/vmlinuz-<release>. */
  images?: string[];
  /** Releases with /usr/src/linux-headers-<release>; the value is its UTS_RELEASE (null: no utsrelease.h). */
  headers?: Record<string, string | null>;
  /** Releases with a /lib/modules/<release> directory. */
  modules?: string[];
}

let treeCount = 0;

/** A fresh fake root with exactly the given pieces. */
function fakeRoot(tree: FakeTree): string {
  const root = path.join(scratch(), `root-${++treeCount}`);
  mkdirSync(root);
  for (const release of tree.images ?? []) writeFile(root, `boot/vmlinuz-${release}`, 'not a real bzImage');
  for (const [release, uts] of Object.entries(tree.headers ?? {})) {
    writeHeaders(path.join(root, 'usr/src', `linux-headers-${release}`), uts);
  }
  for (const release of tree.modules ?? []) mkdirSync(path.join(root, 'lib/modules', release), { recursive: true });
  return root;
}

function writeFile(root: string, relative: string, content: string): string {
  const file = path.join(root, relative);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

function writeHeaders(kdir: string, uts: string | null): void {
  writeFile(kdir, 'Makefile', '# fake kbuild Makefile\n');
  if (uts !== null) writeFile(kdir, 'include/generated/utsrelease.h', `#define UTS_RELEASE "${uts}"\n`);
}

/** A complete installation of each release: image, matching headers, modules. */
function complete(...releases: string[]): FakeTree {
  return {
    images: releases,
    headers: Object.fromEntries(releases.map((release) => [release, release])),
    modules: releases,
  };
}

/** A missing install, which `make setup` would fix: exit 3. */
const setupErrorOf = (action: () => unknown): string => userErrorOf(action, ExitCode.SETUP);
/** A bad --kernel, --kernels or --kdir value: exit 2. */
const usageErrorOf = (action: () => unknown): string => userErrorOf(action, ExitCode.USAGE);

describe('compareReleases', () => {
  it('compares the numeric parts, not the text', () => {
    expect(compareReleases(NEW, OLD)).toBeGreaterThan(0);
    expect(compareReleases(OLD, NEW)).toBeLessThan(0);
    expect(compareReleases(TRIXIE, NEW)).toBeGreaterThan(0);
    expect(compareReleases('6.12.1', '6.1.0-56')).toBeGreaterThan(0);
    expect(compareReleases(NEW, NEW)).toBe(0);
  });

  it('sorts a mixed list oldest first', () => {
    expect([TRIXIE, NEW, '6.1.0-10-amd64', OLD].sort(compareReleases)).toEqual([
      OLD,
      '6.1.0-10-amd64',
      NEW,
      TRIXIE,
    ]);
  });
});

describe('installedReleases', () => {
  it('lists the vmlinuz-* images in /boot, oldest first, and nothing else', () => {
    const root = fakeRoot({ images: [NEW, OLD] });
    writeFile(root, `boot/config-${NEW}`, '');
    writeFile(root, `boot/System.map-${NEW}`, '');
    writeFile(root, `boot/initrd.img-${NEW}`, '');
    expect(installedReleases(root)).toEqual([OLD, NEW]);
  });

  it('is empty when there is no /boot at all', () => {
    expect(installedReleases(fakeRoot({}))).toEqual([]);
  });
});

describe('headersRelease', () => {
  it('reads UTS_RELEASE from include/generated/utsrelease.h', () => {
    const kdir = path.join(scratch(), 'headers-uts');
    writeHeaders(kdir, NEW);
    expect(headersRelease(kdir)).toBe(NEW);
  });

  it('is undefined when the tree has no utsrelease.h', () => {
    const kdir = path.join(scratch(), 'headers-no-uts');
    writeHeaders(kdir, null);
    expect(headersRelease(kdir)).toBeUndefined();
  });
});

describe('discoverKernel', () => {
  it('picks the newest release and returns its image, headers and modules', () => {
    const root = fakeRoot(complete(OLD, NEW));
    expect(discoverKernel({ root })).toEqual({
      version: NEW,
      series: '6.1',
      image: path.join(root, 'boot', `vmlinuz-${NEW}`),
      headers: path.join(root, 'usr/src', `linux-headers-${NEW}`),
      modules: path.join(root, 'lib/modules', NEW),
    });
  });

  it('defaults to the newest release of DEFAULT_SERIES, not the newest overall', () => {
    const releases = [OLD, NEW, BPO_OLD, BPO, TRIXIE, FUTURE];
    const ofDefault = releases.filter((release) => seriesOf(release) === DEFAULT_SERIES).sort(compareReleases);
    expect(ofDefault, 'the fake tree holds the default series').not.toEqual([]);
    const kernel = discoverKernel({ root: fakeRoot(complete(...releases)) });
    expect(kernel.version).toBe(ofDefault.at(-1));
    expect(kernel.series).toBe(DEFAULT_SERIES);
  });

  it('without a kernel of DEFAULT_SERIES, says so instead of taking another series', () => {
    const root = fakeRoot(complete(FUTURE));
    const message = setupErrorOf(() => discoverKernel({ root }));
    expect(message).toContain(`no ${DEFAULT_SERIES} kernel installed: run \`make setup\``);
    expect(message).toContain(`installed: ${seriesOf(FUTURE)}`);
  });

  it('takes `kernel` as a series: the newest installed release of it', () => {
    const root = fakeRoot(complete(OLD, NEW, BPO, BPO_OLD));
    expect(discoverKernel({ root, kernel: '6.12' })).toEqual({
      version: BPO,
      series: '6.12',
      image: path.join(root, 'boot', `vmlinuz-${BPO}`),
      headers: path.join(root, 'usr/src', `linux-headers-${BPO}`),
      modules: path.join(root, 'lib/modules', BPO),
    });
    expect(discoverKernel({ root, kernel: '6.1' }).version).toBe(NEW);
  });

  it('does not take 6.1 to mean 6.12 (or 6.10), nor the reverse', () => {
    const root = fakeRoot(complete(BPO, '6.10.3-amd64'));
    expect(setupErrorOf(() => discoverKernel({ root, kernel: '6.1' }))).toContain('no 6.1 kernel installed');
    const only61 = fakeRoot(complete(NEW));
    expect(setupErrorOf(() => discoverKernel({ root: only61, kernel: '6.12' }))).toBe(
      'no 6.12 kernel installed: run `make setup` (installed: 6.1)',
    );
  });

  it('takes a full 6.12 release as well', () => {
    const root = fakeRoot(complete(NEW, BPO_OLD, BPO));
    const kernel = discoverKernel({ root, kernel: BPO_OLD });
    expect(kernel.version).toBe(BPO_OLD);
    expect(kernel.series).toBe('6.12');
  });

  it('takes `kernel` as a release', () => {
    const root = fakeRoot(complete(OLD, NEW));
    const kernel = discoverKernel({ root, kernel: OLD });
    expect(kernel.version).toBe(OLD);
    expect(kernel.image).toBe(path.join(root, 'boot', `vmlinuz-${OLD}`));
    expect(kernel.headers).toBe(path.join(root, 'usr/src', `linux-headers-${OLD}`));
  });

  it('takes `kernel` as a path to a vmlinuz-<release> anywhere', () => {
    const root = fakeRoot(complete(OLD, NEW));
    const image = writeFile(scratch(), `elsewhere/vmlinuz-${OLD}`, 'not a real bzImage');
    const kernel = discoverKernel({ root, kernel: image });
    expect(kernel.version).toBe(OLD);
    expect(kernel.image).toBe(image);
    expect(kernel.modules).toBe(path.join(root, 'lib/modules', OLD));
  });

  it('rejects a `kernel` path that does not exist as a bad --kernel', () => {
    const root = fakeRoot(complete(NEW));
    const missing = path.join(scratch(), 'nowhere', `vmlinuz-${NEW}`);
    const message = usageErrorOf(() => discoverKernel({ root, kernel: missing }));
    expect(message).toContain(missing);
    expect(message).toMatch(/^--kernel: /);
  });

  it('rejects a `kernel` path whose name does not carry the release', () => {
    const root = fakeRoot(complete(NEW));
    const image = writeFile(scratch(), 'elsewhere/bzImage', 'not a real bzImage');
    expect(usageErrorOf(() => discoverKernel({ root, kernel: image }))).toMatch(/^--kernel: .*vmlinuz-<release>/);
  });

  it('rejects a `kernel` image whose release has no series, before looking for its headers', () => {
    const root = fakeRoot(complete(NEW));
    const image = writeFile(scratch(), 'elsewhere/vmlinuz-custom', 'not a real bzImage');
    expect(usageErrorOf(() => discoverKernel({ root, kernel: image }))).toContain("'custom'");
  });

  it('takes a series `make setup` does not install as a bad value, naming the option and what setup installs', () => {
    const root = fakeRoot(complete(NEW));
    const message = usageErrorOf(() => discoverKernel({ root, kernel: '5.10' }));
    expect(message).toMatch(/^--kernel 5\.10: no 5\.10 kernel installed \(installed: 6\.1\)/);
    expect(message).toContain('installs 6.1 and 6.12');
    expect(usageErrorOf(() => discoverKernels(['6.1', '5.10'], { root }))).toMatch(/^--kernels 5\.10: /);
  });

  it('tells the user to run `make setup` when /boot has no image', () => {
    expect(setupErrorOf(() => discoverKernel({ root: fakeRoot({}) }))).toContain('make setup');
    const emptyBoot = fakeRoot({});
    mkdirSync(path.join(emptyBoot, 'boot'));
    writeFile(emptyBoot, 'boot/config-6.1.0-56-amd64', '');
    expect(setupErrorOf(() => discoverKernel({ root: emptyBoot }))).toContain('make setup');
  });

  it('takes a release that is not installed as a bad value, listing the installed ones', () => {
    const root = fakeRoot(complete(OLD, NEW));
    const message = usageErrorOf(() => discoverKernel({ root, kernel: '6.1.0-99-amd64' }));
    expect(message).toMatch(/^--kernel: /);
    expect(message).toContain('6.1.0-99-amd64');
    expect(message).toContain(`installed: ${OLD}, ${NEW}`);
  });

  it('fails when the headers for the release are missing', () => {
    const root = fakeRoot({ images: [NEW], modules: [NEW] });
    const message = setupErrorOf(() => discoverKernel({ root }));
    expect(message).toContain(NEW);
    expect(message).toContain('make setup');
  });

  it('fails when the headers directory exists but has no Makefile', () => {
    const root = fakeRoot({ images: [NEW], modules: [NEW] });
    writeFile(root, `usr/src/linux-headers-${NEW}/include/generated/utsrelease.h`, `#define UTS_RELEASE "${NEW}"\n`);
    expect(setupErrorOf(() => discoverKernel({ root }))).toContain(`linux-headers-${NEW}`);
  });

  it('accepts a `kdir` built for the same release', () => {
    const root = fakeRoot({ images: [NEW], modules: [NEW] });
    const kdir = path.join(scratch(), 'kdir-same');
    writeHeaders(kdir, NEW);
    expect(discoverKernel({ root, kdir }).headers).toBe(kdir);
  });

  it('rejects a `kdir` whose UTS_RELEASE differs as a bad --kdir, naming both releases', () => {
    const root = fakeRoot(complete(NEW));
    const kdir = path.join(scratch(), 'kdir-other');
    writeHeaders(kdir, OLD);
    const message = usageErrorOf(() => discoverKernel({ root, kdir }));
    expect(message).toMatch(/^--kdir: /);
    expect(message).toContain(OLD);
    expect(message).toContain(NEW);
    expect(message).toContain(kdir);
  });

  it('rejects a `kdir` without a Makefile as a bad --kdir, without the `make setup` hint', () => {
    const root = fakeRoot(complete(NEW));
    const kdir = path.join(scratch(), 'kdir-empty');
    mkdirSync(kdir);
    const message = usageErrorOf(() => discoverKernel({ root, kdir }));
    expect(message).toMatch(/^--kdir: /);
    expect(message).toContain(kdir);
    expect(message).not.toContain('make setup');
  });

  it('fails when /lib/modules/<release> is missing', () => {
    const root = fakeRoot({ images: [NEW], headers: { [NEW]: NEW } });
    const message = setupErrorOf(() => discoverKernel({ root }));
    expect(message).toContain(path.join(root, 'lib/modules', NEW));
  });
});

describe('seriesOf and installedSeries', () => {
  it('takes the first two numbers of a release', () => {
    expect(seriesOf(NEW)).toBe('6.1');
    expect(seriesOf(BPO)).toBe('6.12');
    expect(seriesOf(TRIXIE)).toBe('6.12');
    expect(seriesOf('6.10.3-amd64')).toBe('6.10');
  });

  it('rejects a release without a series', () => {
    expect(usageErrorOf(() => seriesOf('custom'))).toContain('custom');
  });

  it('lists each installed series once, oldest first', () => {
    const root = fakeRoot({ images: [BPO, NEW, OLD, BPO_OLD] });
    expect(installedSeries(root)).toEqual(['6.1', '6.12']);
    expect(installedSeries(fakeRoot({}))).toEqual([]);
  });
});

describe('discoverKernels', () => {
  it("'all' is the newest release of every installed series, oldest series first", () => {
    const root = fakeRoot(complete(BPO, OLD, NEW, BPO_OLD));
    const kernels = discoverKernels('all', { root });
    expect(kernels.map((kernel) => [kernel.series, kernel.version])).toEqual([
      ['6.1', NEW],
      ['6.12', BPO],
    ]);
    expect(kernels[1]?.headers).toBe(path.join(root, 'usr/src', `linux-headers-${BPO}`));
  });

  it("'all' with one series installed is that one kernel", () => {
    const root = fakeRoot(complete(NEW));
    expect(discoverKernels('all', { root }).map((kernel) => kernel.version)).toEqual([NEW]);
  });

  it('takes a list of series and releases, in the order given, each kernel once', () => {
    const root = fakeRoot(complete(OLD, NEW, BPO));
    expect(discoverKernels(['6.12', '6.1', NEW, OLD], { root }).map((kernel) => kernel.version)).toEqual([BPO, NEW, OLD]);
  });

  it('names a missing series and says how to install it', () => {
    const root = fakeRoot(complete(NEW));
    expect(setupErrorOf(() => discoverKernels(['6.1', '6.12'], { root }))).toContain(
      'no 6.12 kernel installed: run `make setup`',
    );
  });

  it('fails with `make setup` when nothing is installed', () => {
    expect(setupErrorOf(() => discoverKernels('all', { root: fakeRoot({}) }))).toContain('make setup');
  });

  it('takes an empty list as a bad --kernels', () => {
    expect(usageErrorOf(() => discoverKernels([], { root: fakeRoot(complete(NEW)) }))).toMatch(/^--kernels: .*all/);
  });

  it('fails when an installed series lacks its headers', () => {
    const root = fakeRoot({ ...complete(NEW), images: [NEW, BPO], modules: [NEW, BPO] });
    const message = setupErrorOf(() => discoverKernels('all', { root }));
    expect(message).toContain(`linux-headers-${BPO}`);
    expect(message).toContain('make setup');
  });
});
