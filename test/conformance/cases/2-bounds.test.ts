/**
 * Bounds: the driver refuses what lies past its region (catalogue A1, A4-A7, F1).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 */
import { type TestContext, expect, it } from 'vitest';
import { describeProfiles, MOVE_VETOES, ranBranch, REFUSALS } from '../profile-suite.js';
import { cannotExpand, settle, vmaAt } from './vma.js';

describeProfiles('bounds (catalogue A6: the driver refuses what lies past its region)', (t) => {
  /** Out of range: refused outright, or every page past the end faults (catalogue A6, the fb/usbmon choice). */
  const expectOutOfRange = async (ctx: TestContext, length: bigint, offset: bigint, firstBadPage = 0n): Promise<void> => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    const mapped = await settle(native.mmap(0n, length, c.PROT_READ, c.MAP_SHARED, fd, offset));
    if ('code' in mapped) {
      expect(REFUSALS).toContain(mapped.code);
      await ranBranch(ctx, `refused with ${mapped.code}`);
    } else {
      const addr = mapped.value;
      t.mappings.later(() => native.munmap(addr, length));
      // Never acceptable: success followed by readable bytes past the device end.
      for (let page = firstBadPage; page * t.dut.page < length; page++) {
        expect(await native.probe(addr + page * t.dut.page, 'read')).toBe('SIGBUS');
      }
      await ranBranch(ctx, 'mapped; every page past the region raises SIGBUS');
    }
  };
  const end = (): bigint => t.dut.offset + t.dut.size;

  it('a length one page past the region', { tags: ['core'] }, (ctx) => expectOutOfRange(ctx, t.dut.size + t.dut.page, t.dut.offset, t.dut.size / t.dut.page));
  it('an offset at the end of the region', (ctx) => expectOutOfRange(ctx, t.dut.page, end()));
  it('an offset 16 pages past the end', (ctx) => expectOutOfRange(ctx, t.dut.page, end() + 16n * t.dut.page));
  // The straddle: the first page is inside, the second is not.
  it('two pages at offset end - page', { tags: ['core'] }, (ctx) => expectOutOfRange(ctx, 2n * t.dut.page, end() - t.dut.page, 1n));
  // catalogue A7, taxonomy #2: offsets that truncate to the region's start in 32 bits must not alias it.
  it('offset 2^32 + region offset (truncates to the region in 32 bits)', (ctx) => expectOutOfRange(ctx, t.dut.page, (1n << 32n) + t.dut.offset));
  it('offset 2^31 pages (2^43 bytes)', (ctx) => expectOutOfRange(ctx, t.dut.page, (1n << 31n) * t.dut.page + t.dut.offset));
  it('offset 2^44 (pgoff 2^32, page 0 when truncated to 32 bits)', { tags: ['core'] }, (ctx) => expectOutOfRange(ctx, t.dut.page, (1n << 44n) + t.dut.offset));
  // catalogue A5: the core rejects pgoff past ULONG_MAX - len (file_mmap_ok in do_mmap, 6.1: EOVERFLOW);
  // 2^64-2 pages reaches the driver. Of a regular file (sysfs PCI resourceN) the limit is MAX_LFS_FILESIZE
  // (file_mmap_size_max, 6.1), so there the core itself refuses it with EOVERFLOW and the driver never sees it.
  it('offset 2^64 - 2 pages (a char device driver must refuse it; for a file the core does)', async (ctx) => {
    const offset = (1n << 64n) - 2n * t.dut.page;
    if ((await t.dut.guest.stat(t.profile.device)).type !== 'regular file') {
      await expectOutOfRange(ctx, t.dut.page, offset);
    } else {
      const fd = await t.mappings.open(t.profile.device, t.dut.c.O_RDONLY);
      await expect(t.dut.native.mmap(0n, t.dut.page, t.dut.c.PROT_READ, t.dut.c.MAP_SHARED, fd, offset)).rejects.toMatchObject({ code: 'EOVERFLOW' });
      await ranBranch(ctx, 'refused with EOVERFLOW by the core (a regular file)');
    }
  });
  // catalogue A6: a driver that hands out whole objects may map each only from its start: DRM GEM looks the
  // offset up exactly (drm_gem_mmap: drm_vma_offset_exact_lookup_locked, 6.1 and 6.12) and refuses any other
  // with EINVAL. The profile says which (interiorOffsets); "a map at page offset k" checks the content.
  it('an offset one page into the region: mapped, or refused where the profile says only its start maps', async (ctx) => {
    const { native, c } = t.dut;
    ctx.skip(t.dut.size < 2n * t.dut.page, 'the region has one page');
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    const mapped = await settle(native.mmap(0n, t.dut.page, c.PROT_READ, c.MAP_SHARED, fd, t.dut.offset + t.dut.page));
    if ('value' in mapped) t.mappings.later(() => native.munmap(mapped.value, t.dut.page));
    if (t.profile.interiorOffsets) {
      expect('code' in mapped ? mapped.code : 'mapped').toBe('mapped');
    } else {
      expect(REFUSALS).toContain('code' in mapped ? mapped.code : 'mapped');
      await ranBranch(ctx, `refused with ${'code' in mapped ? mapped.code : ''} (interiorOffsets: false)`);
    }
  });
  // catalogue A1: do_mmap (6.1 and 6.12) refuses a zero length before any driver code runs.
  it('a zero length is refused with EINVAL (kernel, do_mmap)', async () => {
    const fd = await t.mappings.open(t.profile.device, t.dut.c.O_RDONLY);
    await expect(t.dut.native.mmap(0n, 0n, t.dut.c.PROT_READ, t.dut.c.MAP_SHARED, fd, t.dut.offset)).rejects.toMatchObject({ code: 'EINVAL' });
  });
  // catalogue A4: the x86-64 mmap syscall (6.1 and 6.12) refuses an offset that is not page aligned.
  it('an unaligned offset is refused with EINVAL (kernel)', async () => {
    const fd = await t.mappings.open(t.profile.device, t.dut.c.O_RDONLY);
    await expect(t.dut.native.mmap(0n, t.dut.page, t.dut.c.PROT_READ, t.dut.c.MAP_SHARED, fd, t.dut.offset + 1n)).rejects.toMatchObject({ code: 'EINVAL' });
  });
  // catalogue F1: growing a mapping must not reach past the region: EFAULT for VM_DONTEXPAND/VM_PFNMAP
  // vmas (vma_to_resize, 6.1 and 6.12), or the new page faults. Any other vma grows, in place or moved;
  // a move can only be vetoed by the driver's vm_ops (MOVE_VETOES).
  it('mremap cannot grow a mapping past the region', { tags: ['core'] }, async (ctx) => {
    const { native, c } = t.dut;
    const { addr } = await t.mappings.map(t.profile.device, { prot: c.PROT_READ, openFlags: c.O_RDONLY });
    const vma = await vmaAt(t, addr);
    const grown = await settle(native.mremap(addr, t.dut.size, t.dut.size + t.dut.page, c.MREMAP_MAYMOVE));
    if ('code' in grown) {
      if (cannotExpand(vma)) expect(grown.code).toBe('EFAULT');
      else expect(MOVE_VETOES).toContain(grown.code);
      await ranBranch(ctx, `refused with ${grown.code}`);
    } else {
      t.mappings.later(() => native.munmap(grown.value, t.dut.size + t.dut.page));
      expect(cannotExpand(vma), `${vma.line} VmFlags ${[...vma.flags].join(' ')}: the kernel must refuse`).toBe(false);
      expect(await native.probe(grown.value + t.dut.size, 'read')).not.toBe('ok');
      await ranBranch(ctx, 'grown; the page past the region faults');
    }
  });
});
