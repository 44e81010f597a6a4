/**
 * mremap, munmap and MAP_FIXED on a device mapping (catalogue F1-F8).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 *
 * These cases unmap or move parts of a mapping, so they never leave the
 * harness an undo step over a range they gave back to the kernel: the agent
 * may have mapped something else there since.
 */
import { expect, it } from 'vitest';
import { pagePattern, writePagePatterns } from '../device.js';
import { describeProfiles, MOVE_VETOES, ranBranch, REFUSALS } from '../profile-suite.js';
import { cannotExpand, outcome, settle, vmaAt } from './vma.js';

describeProfiles('mremap, munmap and MAP_FIXED (F)', (t) => {
  const page = (): bigint => t.dut.page;
  const pages = (): bigint => t.dut.size / t.dut.page;

  /** Writes pagePattern(i) over page i of the region for each i of `indices` (default 0..count-1), through the writer. */
  const fillPatterns = async (writer: string, count: bigint, indices?: bigint[]): Promise<void> => {
    const { addr } = await t.mappings.map(writer, { length: count * page() });
    if (indices === undefined) return writePagePatterns(t.dut, addr, 0n, count);
    for (const index of indices) await writePagePatterns(t.dut, addr + index * page(), index, 1n);
  };

  /** A read-only shared mapping of `count` pages at region page `first`, unmapped at the end only over `live()`. */
  const mapTracked = async (count: bigint, first = 0n) => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    const addr = await native.mmap(0n, count * page(), c.PROT_READ, c.MAP_SHARED, fd, t.dut.offset + first * page());
    const state = { fd, addr, live: [[addr, count * page()]] as [bigint, bigint][] };
    t.mappings.later(async () => {
      for (const [start, length] of state.live) await native.munmap(start, length).catch(() => undefined);
    });
    return state;
  };

  /** An anonymous PROT_NONE placeholder of `length` bytes: an address nobody else will be given. */
  const placeholder = async (length: bigint): Promise<bigint> => {
    const { native, c } = t.dut;
    const addr = await native.mmap(0n, length, c.PROT_NONE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, -1, 0n);
    t.mappings.later(() => native.munmap(addr, length).catch(() => undefined));
    return addr;
  };

  const readPage = (addr: bigint): Promise<Buffer> => t.dut.native.readBytes(addr, Number(page()));

  // catalogue F3: shrinking is always allowed and unmaps the tail (the mremap syscall); only a
  // may_split veto can refuse it (EINVAL, __split_vma; both 6.1 and 6.12).
  it('mremap shrink keeps the first part and unmaps the tail', { tags: ['core'] }, async (ctx) => {
    ctx.skip(pages() < 2n, 'the device has fewer than 2 pages');
    await fillPatterns(t.needsWriter(ctx), 2n);
    const view = await mapTracked(2n);
    const shrunk = await settle(t.dut.native.mremap(view.addr, 2n * page(), page(), 0));
    if ('code' in shrunk) {
      // A may_split veto: the mapping must stay whole and intact.
      expect(shrunk.code).toBe('EINVAL');
      expect(await readPage(view.addr + page())).toEqual(pagePattern(1n, page()));
      await ranBranch(ctx, `refused with ${shrunk.code} (vm_ops->may_split); the mapping stayed whole`);
    } else {
      view.live = [[shrunk.value, page()]];
      expect(shrunk.value).toBe(view.addr);
      expect(await readPage(shrunk.value)).toEqual(pagePattern(0n, page()));
      expect(await t.dut.native.probe(shrunk.value + page(), 'read')).toBe('SIGSEGV');
      await ranBranch(ctx, 'shrunk');
    }
  });

  // catalogue F4: a move (MREMAP_MAYMOVE|MREMAP_FIXED, same size) is allowed; the content moves along
  // and the old address is unmapped (move_vma lets vm_ops->mremap veto it and, for PFNMAP, calls
  // untrack_pfn_clear; both 6.1 and 6.12).
  it('mremap moves a mapping onto a placeholder, content and page order intact', async (ctx) => {
    const count = pages() >= 2n ? 2n : 1n;
    await fillPatterns(t.needsWriter(ctx), count);
    const view = await mapTracked(count);
    const target = await placeholder(count * page());
    const { c } = t.dut;
    const moved = await settle(t.dut.native.mremap(view.addr, count * page(), count * page(), c.MREMAP_MAYMOVE | c.MREMAP_FIXED, target));
    if ('code' in moved) {
      // A driver's vm_ops may veto moves; the mapping must stay where it was.
      expect(MOVE_VETOES).toContain(moved.code);
      expect(await readPage(view.addr)).toEqual(pagePattern(0n, page()));
      await ranBranch(ctx, `refused with ${moved.code} (the driver's vm_ops); the mapping stayed`);
    } else {
      // The placeholder's own undo step now unmaps the moved mapping.
      view.live = [];
      expect(moved.value).toBe(target);
      for (let index = 0n; index < count; index++) expect(await readPage(moved.value + index * page())).toEqual(pagePattern(index, page()));
      expect(await t.dut.native.probe(view.addr, 'read')).toBe('SIGSEGV');
      await ranBranch(ctx, 'moved');
    }
  });

  // catalogue F6 and F2 (taxonomy #3): mremap(old_size = 0) duplicates a shared mapping. VM_DONTEXPAND
  // or VM_PFNMAP vmas give EFAULT (vma_to_resize, 6.1 and 6.12). Otherwise the duplicate of the last page,
  // asked one page longer, shows that page and then a page past the region, which ->fault must
  // refuse with SIGBUS (do_fault's comment, 6.1: "missing VM_DONTEXPAND").
  it('mremap with old_size 0 (duplicate) of the last page: EFAULT, or the same page and SIGBUS past the region', async (ctx) => {
    t.needsInteriorOffsets(ctx);
    const last = pages() - 1n;
    await fillPatterns(t.needsWriter(ctx), pages(), [last]);
    const view = await mapTracked(1n, last);
    const vma = await vmaAt(t, view.addr);
    const copy = await settle(t.dut.native.mremap(view.addr, 0n, 2n * page(), t.dut.c.MREMAP_MAYMOVE));
    if ('code' in copy) {
      // Any other vma is duplicated through move_vma(), where only the driver's vm_ops can veto it.
      if (cannotExpand(vma)) expect(copy.code).toBe('EFAULT');
      else expect(MOVE_VETOES).toContain(copy.code);
      await ranBranch(ctx, `refused with ${copy.code}`);
    } else {
      const addr = copy.value;
      t.mappings.later(() => t.dut.native.munmap(addr, 2n * page()).catch(() => undefined));
      expect(cannotExpand(vma), `${vma.line} VmFlags ${[...vma.flags].join(' ')}: the kernel must refuse`).toBe(false);
      expect(await readPage(addr)).toEqual(pagePattern(last, page()));
      expect(await t.dut.native.probe(addr + page(), 'read')).toBe('SIGBUS');
      await ranBranch(ctx, 'duplicated; SIGBUS past the region');
    }
  });

  // catalogue F6: duplicating a private mapping is refused by the kernel (vma_to_resize, 6.1 and 6.12).
  it('mremap with old_size 0 of a MAP_PRIVATE mapping is refused with EINVAL (kernel)', async (ctx) => {
    ctx.skip(t.profile.private === 'rejected', 'the profile says MAP_PRIVATE is refused');
    const { native, c } = t.dut;
    const addr = await t.needsPrivate(ctx, c.PROT_READ, page(), c.O_RDONLY);
    expect(await outcome(native.mremap(addr, 0n, page(), c.MREMAP_MAYMOVE))).toBe('EINVAL');
  });

  // catalogue F5: MREMAP_DONTUNMAP is refused for VM_DONTEXPAND or VM_PFNMAP vmas (vma_to_resize, 6.1 and 6.12);
  // any other shared vma is moved and the old range stays mapped (a file vma keeps its pages).
  it('MREMAP_DONTUNMAP: EINVAL for a VM_DONTEXPAND/VM_PFNMAP vma, otherwise both ranges show the device', async (ctx) => {
    await fillPatterns(t.needsWriter(ctx), 1n);
    const view = await mapTracked(1n);
    const vma = await vmaAt(t, view.addr);
    const { c } = t.dut;
    const moved = await settle(t.dut.native.mremap(view.addr, page(), page(), c.MREMAP_MAYMOVE | c.MREMAP_DONTUNMAP));
    if ('code' in moved) {
      // Any other vma goes on to move_vma(), where only the driver's vm_ops can veto the move.
      if (cannotExpand(vma)) expect(moved.code).toBe('EINVAL');
      else expect(MOVE_VETOES).toContain(moved.code);
      expect(await readPage(view.addr)).toEqual(pagePattern(0n, page()));
      await ranBranch(ctx, `refused with ${moved.code}`);
    } else {
      const addr = moved.value;
      t.mappings.later(() => t.dut.native.munmap(addr, page()).catch(() => undefined));
      expect(cannotExpand(vma), `${vma.line} VmFlags ${[...vma.flags].join(' ')}: the kernel must refuse`).toBe(false);
      expect(await readPage(addr)).toEqual(pagePattern(0n, page()));
      await ranBranch(ctx, 'moved; both ranges show the device');
    }
  });

  // catalogue F7: munmap of the head splits the vma (->open for the new piece, __split_vma, 6.1 and 6.12);
  // the pages left stay at their offsets.
  it('munmap of the first page leaves the others at their offsets', { tags: ['core'] }, async (ctx) => {
    ctx.skip(pages() < 3n, 'the device has fewer than 3 pages');
    await fillPatterns(t.needsWriter(ctx), 3n);
    const view = await mapTracked(3n);
    await t.dut.native.munmap(view.addr, page());
    view.live = [[view.addr + page(), 2n * page()]];
    expect(await t.dut.native.probe(view.addr, 'read')).toBe('SIGSEGV');
    expect(await readPage(view.addr + page())).toEqual(pagePattern(1n, page()));
    expect(await readPage(view.addr + 2n * page())).toEqual(pagePattern(2n, page()));
  });

  // catalogue F7: munmap of the tail.
  it('munmap of the last page leaves the others at their offsets', async (ctx) => {
    ctx.skip(pages() < 3n, 'the device has fewer than 3 pages');
    await fillPatterns(t.needsWriter(ctx), 3n);
    const view = await mapTracked(3n);
    await t.dut.native.munmap(view.addr + 2n * page(), page());
    view.live = [[view.addr, 2n * page()]];
    expect(await t.dut.native.probe(view.addr + 2n * page(), 'read')).toBe('SIGSEGV');
    expect(await readPage(view.addr)).toEqual(pagePattern(0n, page()));
    expect(await readPage(view.addr + page())).toEqual(pagePattern(1n, page()));
  });

  // catalogue F8: MAP_FIXED unmaps the old range before ->mmap runs (do_mas_munmap in __mmap_region, 6.1);
  // the new mapping's offset decides what shows.
  it('MAP_FIXED over a device mapping replaces it with the new offset', async (ctx) => {
    t.needsInteriorOffsets(ctx);
    const last = pages() - 1n;
    await fillPatterns(t.needsWriter(ctx), pages(), [0n, last]);
    const view = await mapTracked(1n);
    expect(await readPage(view.addr)).toEqual(pagePattern(0n, page()));
    const { native, c } = t.dut;
    const again = await native.mmap(view.addr, page(), c.PROT_READ, c.MAP_SHARED | c.MAP_FIXED, view.fd, t.dut.offset + last * page());
    expect(again).toBe(view.addr);
    expect(await readPage(view.addr)).toEqual(pagePattern(last, page()));
  });

  // catalogue F8: if the MAP_FIXED mmap fails, the old mapping is gone anyway on 6.1 and 6.12 (POSIX
  // assertion 15 allows it): never the old content. A driver that accepts out-of-range offsets must
  // SIGBUS there (catalogue A6).
  it('a refused MAP_FIXED over a device mapping leaves no old content behind', async (ctx) => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    const addr = await native.mmap(0n, page(), c.PROT_READ, c.MAP_SHARED, fd, t.dut.offset);
    // Undone only while this case still owns the range (a refused MAP_FIXED gives it back).
    let owned = true;
    t.mappings.later(async () => (owned ? native.munmap(addr, page()) : undefined));
    const past = t.dut.offset + t.dut.size + 16n * page();
    let code: string;
    try {
      await native.mmap(addr, page(), c.PROT_READ, c.MAP_SHARED | c.MAP_FIXED, fd, past);
      code = 'ok';
    } catch (error) {
      owned = false;
      code = (error as { code?: string }).code ?? String(error);
    }
    const touched = await native.probe(addr, 'read');
    if (code === 'ok') {
      expect(touched).toBe('SIGBUS');
      await ranBranch(ctx, 'mapped; SIGBUS past the region');
    } else {
      expect(REFUSALS).toContain(code);
      expect(touched).toBe('SIGSEGV');
      await ranBranch(ctx, `refused with ${code}; the old mapping is gone`);
    }
  });

  // munmap: an unaligned start is EINVAL (do_mas_munmap, 6.1) and leaves the mapping alone.
  it('munmap of an unaligned address is refused with EINVAL (kernel)', async () => {
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    expect(await outcome(t.dut.native.munmap(addr + 1n, page()))).toBe('EINVAL');
    expect(await t.dut.native.probe(addr, 'read')).toBe('ok');
  });

  // munmap: after it, any access is SIGSEGV/SEGV_MAPERR (open_posix munmap 1-1), never SIGBUS or data.
  it('a touch after munmap raises SIGSEGV', async () => {
    const view = await mapTracked(1n);
    expect(await t.dut.native.probe(view.addr, 'read')).toBe('ok');
    await t.dut.native.munmap(view.addr, page());
    view.live = [];
    expect(await t.dut.native.probe(view.addr, 'read')).toBe('SIGSEGV');
  });
});
