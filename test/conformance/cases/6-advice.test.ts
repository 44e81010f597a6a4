/**
 * madvise, mlock, msync, mincore, MAP_POPULATE and mmap flag checks
 * (catalogue G1-G7, E2, A8).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 * Where the kernel's answer depends on the vma's flags (VM_PFNMAP, VM_IO, ...),
 * the case reads them from /proc/PID/smaps and expects that answer.
 */
import { expect, it } from 'vitest';
import { describeProfiles, ranBranch } from '../profile-suite.js';
import { gupRefuses, isPfnmap, isSpecial, outcome, settle, vmaAt } from './vma.js';

describeProfiles('madvise, mlock, msync, mincore, populate, mmap flags (catalogue G1-G7, A8)', (t) => {
  const page = (): bigint => t.dut.page;
  /** Up to `count` pages, no more than the device has. */
  const upTo = (count: bigint): bigint => (t.dut.size < count * t.dut.page ? t.dut.size : count * t.dut.page);
  const mapReadOnly = (length = page()) =>
    t.mappings.map(t.profile.device, { length, prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });

  // catalogue G1: MADV_DONTNEED on VM_PFNMAP is EINVAL (madvise_dontneed_free_valid_vma, 6.1 and 6.12).
  // catalogue G2: on any other vma it zaps the PTEs and the next touch re-faults the same content.
  it('MADV_DONTNEED: EINVAL on VM_PFNMAP, otherwise the content shows again after it', async (ctx) => {
    const { addr, length } = await mapReadOnly(upTo(2n));
    const before = await t.dut.native.readBytes(addr, Number(length));
    const vma = await vmaAt(t, addr);
    const result = await outcome(t.dut.native.madvise(addr, length, t.dut.c.MADV_DONTNEED));
    expect(result).toBe(isPfnmap(vma) ? 'EINVAL' : 'ok');
    const after = await settle(t.dut.native.readBytes(addr, Number(length)));
    if ('code' in after) {
      // catalogue G2, its trap: an insert-at-mmap driver (VM_MIXEDMAP, no ->fault) SIGBUSes after DONTNEED.
      expect(after.code).toBe('SIGBUS');
      expect(vma.flags.has('mm'), `${vma.line}: only a VM_MIXEDMAP mapping without ->fault may SIGBUS here`).toBe(true);
      await ctx.annotate('quality warning: VM_MIXEDMAP mapping without ->fault SIGBUSes after MADV_DONTNEED (catalogue G2)');
      await ranBranch(ctx, 'SIGBUS after MADV_DONTNEED (VM_MIXEDMAP without ->fault)');
    } else {
      t.needsStableContent(ctx);
      expect(after.value).toEqual(before);
      await ranBranch(ctx, result === 'ok' ? 'zapped; the content showed again' : 'refused with EINVAL (VM_PFNMAP); the content stayed');
    }
  });

  // catalogue G1: MADV_WILLNEED on a file vma: vfs_fadvise is called and its result ignored (madvise_willneed, 6.1); 0.
  it('MADV_WILLNEED succeeds and changes nothing', async (ctx) => {
    t.needsStableContent(ctx);
    const { addr, length } = await mapReadOnly(upTo(2n));
    const before = await t.dut.native.readBytes(addr, Number(length));
    await t.dut.native.madvise(addr, length, t.dut.c.MADV_WILLNEED);
    expect(await t.dut.native.readBytes(addr, Number(length))).toEqual(before);
  });

  // catalogue E2: MADV_DONTFORK sets VM_DONTCOPY (madvise_vma_behavior, 6.1); fork leaves the vma out
  // (dup_mmap, 6.1), so the child gets SIGSEGV there.
  it('MADV_DONTFORK: a forked child has no mapping there (SIGSEGV)', async () => {
    const { addr } = await mapReadOnly();
    await t.dut.native.madvise(addr, page(), t.dut.c.MADV_DONTFORK);
    expect((await vmaAt(t, addr)).flags.has('dc')).toBe(true);
    await expect(t.dut.native.readInForkedChild(addr, 8)).rejects.toMatchObject({ code: 'SIGSEGV' });
    expect(await t.dut.native.probe(addr, 'read')).toBe('ok');
  });

  // catalogue E2: MADV_DOFORK on a VM_IO vma is EINVAL (madvise_vma_behavior, 6.1); otherwise it clears
  // VM_DONTCOPY and the child inherits the mapping again.
  it('MADV_DOFORK: EINVAL on a VM_IO vma, otherwise the child inherits the mapping again', async (ctx) => {
    const { addr } = await mapReadOnly();
    const before = await t.dut.native.readBytes(addr, 8);
    await t.dut.native.madvise(addr, page(), t.dut.c.MADV_DONTFORK);
    const vma = await vmaAt(t, addr);
    const result = await outcome(t.dut.native.madvise(addr, page(), t.dut.c.MADV_DOFORK));
    if (vma.flags.has('io')) {
      expect(result).toBe('EINVAL');
      await expect(t.dut.native.readInForkedChild(addr, 8)).rejects.toMatchObject({ code: 'SIGSEGV' });
    } else {
      expect(result).toBe('ok');
      t.needsStableContent(ctx);
      expect(await t.dut.native.readInForkedChild(addr, 8)).toEqual(before);
    }
  });

  // catalogue G1: MADV_FREE works on anonymous vmas only (madvise_free_single_vma; PFNMAP already in
  // madvise_dontneed_free_valid_vma), MADV_WIPEONFORK on private anonymous ones only
  // (madvise_vma_behavior; all 6.1): EINVAL on any device vma.
  it('MADV_FREE and MADV_WIPEONFORK are refused with EINVAL (kernel)', async () => {
    const { addr } = await mapReadOnly();
    expect(await outcome(t.dut.native.madvise(addr, page(), t.dut.c.MADV_FREE))).toBe('EINVAL');
    expect(await outcome(t.dut.native.madvise(addr, page(), t.dut.c.MADV_WIPEONFORK))).toBe('EINVAL');
    expect(await t.dut.native.probe(addr, 'read')).toBe('ok');
  });

  // catalogue G1, G3: MADV_POPULATE_READ goes through GUP, which refuses VM_IO|VM_PFNMAP (check_vma_flags,
  // 6.1 and 6.12; EINVAL from faultin_vma_page_range, 6.1); elsewhere it faults the pages in range and returns 0.
  it('MADV_POPULATE_READ: EINVAL on VM_IO/VM_PFNMAP, otherwise 0 inside the region', async () => {
    const { addr, length } = await mapReadOnly(upTo(2n));
    const vma = await vmaAt(t, addr);
    expect(await outcome(t.dut.native.madvise(addr, length, t.dut.c.MADV_POPULATE_READ))).toBe(gupRefuses(vma) ? 'EINVAL' : 'ok');
  });

  // catalogue H4, G1: MADV_DODUMP cannot clear VM_DONTDUMP on a VM_SPECIAL vma (madvise_vma_behavior, 6.1).
  it('MADV_DODUMP: EINVAL on a VM_SPECIAL vma, otherwise 0', async () => {
    const { addr } = await mapReadOnly();
    const vma = await vmaAt(t, addr);
    expect(await outcome(t.dut.native.madvise(addr, page(), t.dut.c.MADV_DODUMP))).toBe(isSpecial(vma) ? 'EINVAL' : 'ok');
  });

  // catalogue G4: mlock returns 0; on a VM_SPECIAL vma it does nothing (mlock_fixup, 6.1 and 6.12): no "lo", Locked 0 kB.
  // Elsewhere it faults every page in through ->fault; the content stays the same.
  it('mlock and munlock succeed; a VM_SPECIAL vma is not locked', { tags: ['core'] }, async (ctx) => {
    const { addr, length } = await mapReadOnly(upTo(4n));
    const before = await t.dut.native.readBytes(addr, Number(length));
    await t.dut.native.mlock(addr, length);
    const vma = await vmaAt(t, addr);
    if (isSpecial(vma)) {
      expect(vma.flags.has('lo')).toBe(false);
      expect(vma.locked).toBe(0);
    } else {
      expect(vma.flags.has('lo')).toBe(true);
    }
    t.needsStableContent(ctx);
    expect(await t.dut.native.readBytes(addr, Number(length))).toEqual(before);
    await t.dut.native.munlock(addr, length);
    expect((await vmaAt(t, addr)).flags.has('lo')).toBe(false);
  });

  // catalogue G6: MS_SYNC on a VM_SHARED vma calls vfs_fsync_range (the msync syscall): 0 with a driver
  // fsync, EINVAL without one (vfs_fsync_range; both 6.1 and 6.12). Either is a correct driver.
  it('msync(MS_SYNC) of a shared mapping of an O_RDWR fd: 0 (driver fsync) or EINVAL (none)', async () => {
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ });
    expect((await vmaAt(t, addr)).flags.has('sh')).toBe(true);
    expect(['ok', 'EINVAL']).toContain(await outcome(t.dut.native.msync(addr, page(), t.dut.c.MS_SYNC)));
    expect(await t.dut.native.probe(addr, 'read')).toBe('ok');
  });

  // catalogue G6 + B3: an O_RDONLY shared mapping lost VM_SHARED (do_mmap), so MS_SYNC does
  // not reach the driver (the msync syscall; both 6.1 and 6.12) and returns 0.
  it('msync(MS_SYNC) of a shared mapping of an O_RDONLY fd returns 0 (kernel)', async (ctx) => {
    t.needsAccessMode(ctx);
    const { addr } = await mapReadOnly();
    expect(await outcome(t.dut.native.msync(addr, page(), t.dut.c.MS_SYNC))).toBe('ok');
  });

  // catalogue G6: MS_ASYNC never reaches the driver: 0 (the msync syscall, 6.1 and 6.12).
  it('msync(MS_ASYNC) returns 0 (kernel)', async () => {
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ });
    expect(await outcome(t.dut.native.msync(addr, page(), t.dut.c.MS_ASYNC))).toBe('ok');
  });

  // catalogue G6: MS_INVALIDATE is EBUSY only over VM_LOCKED vmas (the msync syscall); otherwise 0.
  it('msync(MS_INVALIDATE) of an unlocked mapping returns 0 (kernel)', async () => {
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ });
    expect(await outcome(t.dut.native.msync(addr, page(), t.dut.c.MS_INVALIDATE))).toBe('ok');
    expect(await t.dut.native.probe(addr, 'read')).toBe('ok');
  });

  // catalogue G6: MS_ASYNC|MS_SYNC and an unaligned start are EINVAL (the msync syscall).
  it('msync with MS_ASYNC|MS_SYNC or an unaligned address is refused with EINVAL (kernel)', async () => {
    const { c } = t.dut;
    const { addr } = await mapReadOnly();
    expect(await outcome(t.dut.native.msync(addr, page(), c.MS_ASYNC | c.MS_SYNC))).toBe('EINVAL');
    expect(await outcome(t.dut.native.msync(addr + 1n, page() - 1n, c.MS_ASYNC))).toBe('EINVAL');
  });

  // catalogue G7: mincore skips VM_PFNMAP vmas in the page walk (walk_page_test, 6.1 and 6.12) and reports the
  // device inode's page cache: 0 for every page. Elsewhere a touched page reports 1.
  it('mincore: all zero over VM_PFNMAP, otherwise 1 for a touched page', async () => {
    const { addr, length } = await mapReadOnly(upTo(4n));
    await t.dut.native.readBytes(addr, Number(length));
    const vma = await vmaAt(t, addr);
    const vector = await t.dut.native.mincore(addr, length);
    expect(vector.length).toBe(Number(length / page()));
    if (isPfnmap(vma)) expect([...vector].every((byte) => (byte & 1) === 0)).toBe(true);
    else expect(vector[0]! & 1).toBe(1);
  });

  // catalogue G5: MAP_POPULATE is skipped for VM_IO|VM_PFNMAP (__mm_populate, 6.1 and 6.12) and pre-faults other
  // vmas, ignoring errors; either way the mapping shows the same data as a plain one.
  it('MAP_POPULATE succeeds and reads the same data as a plain mapping', { tags: ['core'] }, async (ctx) => {
    t.needsStableContent(ctx);
    const { c } = t.dut;
    const length = upTo(4n);
    const plain = await mapReadOnly(length);
    const populated = await t.mappings.map(t.profile.device, {
      length,
      prot: c.PROT_READ,
      flags: c.MAP_SHARED | c.MAP_POPULATE,
      openFlags: c.O_RDONLY,
    });
    expect(await t.dut.native.readBytes(populated.addr, Number(length))).toEqual(await t.dut.native.readBytes(plain.addr, Number(length)));
  });

  // catalogue A8: char devices leave mmap_supported_flags at 0, so MAP_SHARED_VALIDATE|MAP_SYNC is
  // EOPNOTSUPP (do_mmap, 6.1 and 6.12).
  it('MAP_SHARED_VALIDATE|MAP_SYNC is refused with EOPNOTSUPP (kernel)', async () => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    // EOPNOTSUPP and ENOTSUP are the same errno (95) on Linux; Node names it ENOTSUP.
    expect(await outcome(native.mmap(0n, page(), c.PROT_READ, c.MAP_SHARED_VALIDATE | c.MAP_SYNC, fd, t.dut.offset))).toMatch(/^(EOPNOTSUPP|ENOTSUP)$/);
  });

  // catalogue A8: with plain MAP_SHARED unknown flags are dropped (do_mmap): the mapping works.
  it('MAP_SHARED|MAP_SYNC maps as plain MAP_SHARED (the flag is dropped)', async (ctx) => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    const addr = await native.mmap(0n, page(), c.PROT_READ, c.MAP_SHARED | c.MAP_SYNC, fd, t.dut.offset);
    t.mappings.later(() => native.munmap(addr, page()));
    t.needsStableContent(ctx);
    expect(await native.readBytes(addr, 16)).toEqual(await t.mappings.readInChild(t.profile.device, t.dut.offset, 16));
  });

  // catalogue A8: neither MAP_SHARED nor MAP_PRIVATE: EINVAL (do_mmap).
  it('a mapping type of neither MAP_SHARED nor MAP_PRIVATE is refused with EINVAL (kernel)', async () => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    expect(await outcome(native.mmap(0n, page(), c.PROT_READ, 0, fd, t.dut.offset))).toBe('EINVAL');
  });

  // catalogue A8: MAP_GROWSDOWN on a file: EINVAL before the driver is called (do_mmap).
  it('MAP_GROWSDOWN on the device is refused with EINVAL (kernel)', async () => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    expect(await outcome(native.mmap(0n, page(), c.PROT_READ, c.MAP_SHARED | c.MAP_GROWSDOWN, fd, t.dut.offset))).toBe('EINVAL');
  });

  // catalogue A8: MAP_HUGETLB with an fd that is not hugetlbfs: EINVAL (ksys_mmap_pgoff, 6.1 and 6.12).
  it('MAP_HUGETLB with the device fd is refused with EINVAL (kernel)', async () => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    expect(await outcome(native.mmap(0n, page(), c.PROT_READ, c.MAP_SHARED | c.MAP_HUGETLB, fd, t.dut.offset))).toBe('EINVAL');
  });
});
