/**
 * Real in-kernel mmap implementations nobody here wrote (test/profiles/real):
 * the suite passes on a PCI BAR through sysfs resource2 (QEMU ivshmem-plain),
 * on /dev/fb0 from DRM fbdev emulation (bochs), and on the objects of six
 * drivers that hand out mappings by ioctl (reporting exactly their known
 * findings), on both kernel series, as a user would run it with several
 * --profile flags; a profile for a newer kernel series is refused on an older
 * one before any boot; and a write the guest makes through the BAR mapping is
 * in the host file behind the ivshmem memory once the guest is gone. The live
 * framebuffer (fbcon drawing into /dev/fb0) is live-framebuffer.test.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { ADDON_PATH, REPO_ROOT } from '../../tools/paths.js';
import { IVSHMEM_SIZE } from '../../tools/qemu/qemu-args.js';
import { scratchDir } from '../scratch-dir.js';
import { runCli } from './run-cli.js';

const REAL = path.join(REPO_ROOT, 'test', 'profiles', 'real');
const IVSHMEM = path.join(REAL, 'ivshmem.json');
const BAR = '/sys/bus/pci/devices/0000:00:10.0/resource2';
/** A whole profile run boots its own guest; under TCG on a busy 2-core host that takes minutes. */
const RUN_TIMEOUT_MS = 900_000;
const scratch = scratchDir('mmapkit-real-drivers-');
/** A group's run: the whole suite for each of up to five profiles in one guest. */
const GROUP_TIMEOUT_MS = 1_800_000;

interface RealProfile {
  name: string;
  knownFindings?: { case: string; series?: string[] }[];
}

const readProfile = (file: string): RealProfile => JSON.parse(readFileSync(path.join(REAL, file), 'utf8')) as RealProfile;

/**
 * One guest per family of drivers that can share it, on each series a profile applies to: booting a guest per
 * profile cost more than most profiles' cases. vgem and bochs cannot share one (each comes up as /dev/dri/card0);
 * the bochs device backs both /dev/fb0 and the dumb buffers, and the ivshmem BAR sits beside them.
 */
const GROUPS: { series: string; files: string[] }[] = [
  { series: '6.1', files: ['ivshmem.json', 'fb0-bochs.json', 'bochs-dumb.json'] },
  { series: '6.1', files: ['vgem-dumb.json', 'vivid.json', 'snd-dummy.json'] },
  { series: '6.12', files: ['ivshmem.json', 'fb0-bochs.json', 'bochs-dumb.json'] },
  { series: '6.12', files: ['vgem-dumb.json', 'vivid.json', 'snd-dummy.json', 'udmabuf.json', 'dma-heap.json'] },
];

describe('the suite on real drivers', () => {
  // The ivshmem BAR and /dev/fb0 (DRM fbdev emulation) are mapped by open and mmap alone. The others hand out
  // mappings by ioctl, through a profile setup (test/profiles/real/setups/): DRM dumb buffers of vgem (shmem GEM,
  // no QEMU device) and bochs (VRAM through TTM), a V4L2 capture buffer of vivid (videobuf2-vmalloc), an ALSA PCM
  // data area of snd-dummy, and dma-bufs of udmabuf and the system DMA-BUF heap (6.12 only: minSeries). Each known
  // finding (vgem's drm_gem_shmem_fault after a split, vivid's VM_SHARED test, snd-dummy's data area mapped from
  // its first page) must be reported for its own profile on each series, and the run pass only because it is.
  it.each(GROUPS.map(({ series, files }) => [files.join(' '), series, files] as const))(
    '%s on %s: every case the profiles allow passes or reports its known finding, kernel log gate included',
    async (_names, series, files) => {
      const resultsFile = path.join(scratch(), `${series}-${files.length}.json`);
      const result = await runCli('test', '--kernel', series, ...files.flatMap((file) => ['--profile', path.join(REAL, file)]), '--results', resultsFile);
      expect(result.code, `${result.stdout.slice(-4000)}\n${result.stderr.slice(-2000)}`).toBe(ExitCode.PASSED);
      expect(result.stdout).toMatch(/^[1-9]\d* passed, 0 failed, \d+ skipped, 0 crashed$/m);
      expect(result.stdout).toMatch(/kernel log findings: none/);
      const profiles = files.map(readProfile);
      // Each profile had its own cases, and passed some: none was lost to another in the shared guest.
      const { cases } = JSON.parse(readFileSync(resultsFile, 'utf8')) as { cases: { name: string; outcome: string }[] };
      const passedNone = profiles.filter(({ name }) => !cases.some((c) => c.name.startsWith(`${name}: `) && c.outcome === 'passed'));
      expect(passedNone.map(({ name }) => name), 'profiles with no passed case').toEqual([]);
      const reported = result.stderr.split('\n').filter((line) => line.startsWith('mmapkit: driver finding: '));
      const expected: string[] = [];
      for (const { name, knownFindings = [] } of profiles) {
        // A finding known on some series only (vivid's cookie masking, 6.12) must be reported there and nowhere else.
        for (const finding of knownFindings.filter((known) => known.series?.includes(series) ?? true)) {
          const line = reported.find((candidate) => candidate.includes(`${name}: `) && candidate.endsWith(` > ${finding.case}]`));
          expect(line, `${name}: ${finding.case}`).toBeDefined();
          expected.push(line!);
        }
      }
      expect(reported.filter((line) => !expected.includes(line)), 'findings no profile knows').toEqual([]);
    },
    GROUP_TIMEOUT_MS,
  );
});

describe('a profile for a newer kernel series (minSeries)', () => {
  it.each(['udmabuf.json', 'dma-heap.json'])('%s on 6.1: exit 3 in one line naming the series it needs, before any boot', async (file) => {
    const result = await runCli('test', '--profile', path.join(REAL, file), '--kernel', '6.1');
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(ExitCode.SETUP);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^mmapkit: error: ${file.replace('.', '\\.')}: needs kernel series >= 6\\.12 \\(its driver is not in 6\\.1\\.\\S+\\): run it with --kernel 6\\.12$`))]);
    expect(result.stdout).not.toMatch(/booted/);
  });
});

describe('ivshmem: the host sees what the guest wrote through the BAR mapping', () => {
  it('a token written at an offset of a MAP_SHARED mapping of resource2 is at that offset of the memory file', async () => {
    const token = `mmapkit ivshmem ${process.pid} ${Date.now()}`;
    const at = 5 * 4096 + 321;
    // In the guest: the native addon maps two pages of the BAR (offset 4 pages) and writes the token.
    const script = [
      `const n = require(${JSON.stringify(ADDON_PATH)}); const c = n.constants;`,
      `const fd = n.open(${JSON.stringify(BAR)}, c.O_RDWR);`,
      'const addr = n.mmap(0n, 8192n, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED, fd, 16384n);',
      `n.writeBytes(addr + ${at - 4 * 4096}n, Buffer.from(${JSON.stringify(token)}));`,
      'n.munmap(addr, 8192n); n.close(fd); console.log("written");',
    ].join(' ');
    const result = await runCli('vm', 'run', '--profile', IVSHMEM, '--', 'node', '-e', script);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(ExitCode.PASSED);
    expect(result.stdout).toContain('written');
    const file = /ivshmem memory file: (\S+)/.exec(result.stderr)?.[1];
    expect(file, result.stderr).toBeDefined();
    // The file lives in the run's directory (build/runs/...), outside the guest-writable out/.
    expect(path.relative(path.join(REPO_ROOT, 'build', 'runs'), file!)).toMatch(/^[^/]+\/ivshmem\.mem$/);
    expect(statSync(file!).size).toBe(IVSHMEM_SIZE);
    const memory = readFileSync(file!);
    expect(memory.subarray(at, at + token.length).toString()).toBe(token);
    // Nothing else was written: the rest of the file is still the zeroes it was created with.
    expect(memory.subarray(0, at).every((byte) => byte === 0)).toBe(true);
    expect(memory.subarray(at + token.length).every((byte) => byte === 0)).toBe(true);
  }, RUN_TIMEOUT_MS);
});
