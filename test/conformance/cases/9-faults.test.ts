/**
 * The fault path and its signals, fork and sharing, and a driver's error path
 * under repetition (catalogue J1-J3, J6, E1-E3, B8; taxonomy #15).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 */
import { expect, it } from 'vitest';
import { moduleName } from '../../../tools/qemu/guest-modules.js';
import { pagePattern, writePagePatterns } from '../device.js';
import type { NativeCall } from '../../../tools/qemu/guest-client.js';
import { describeProfiles, ranBranch, REFUSALS, WRITE_REFUSALS } from '../profile-suite.js';
import { vmaCount } from './vma.js';

describeProfiles('fault path, fork and repetition (J, E, D)', (t) => {
  const page = (): bigint => t.dut.page;
  const pages = (): bigint => t.dut.size / t.dut.page;
  /** Page 0, 1, the middle and the last: where off-by-one and pgoff bugs show. */
  const sampled = (): bigint[] => [...new Set([0n, 1n % pages(), pages() / 2n, pages() - 1n])];

  const fillPatterns = async (writer: string, indices: bigint[]): Promise<void> => {
    const { addr } = await t.mappings.map(writer);
    for (const index of indices) await writePagePatterns(t.dut, addr + index * page(), index, 1n);
  };

  // catalogue J6: an address with no vma is SIGSEGV/SEGV_MAPERR, never SIGBUS,
  // right before and right after a device mapping.
  it('touching the unmapped pages around a mapping raises SIGSEGV', { tags: ['core'] }, async () => {
    const { native, c } = t.dut;
    // Three pages of placeholder; the device goes in the middle, the outer pages are given back.
    const hole = await native.mmap(0n, 3n * page(), c.PROT_NONE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, -1, 0n);
    let live: [bigint, bigint][] = [[hole, 3n * page()]];
    t.mappings.later(async () => {
      for (const [start, length] of live) await native.munmap(start, length).catch(() => undefined);
    });
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    const addr = await native.mmap(hole + page(), page(), c.PROT_READ, c.MAP_SHARED | c.MAP_FIXED, fd, t.dut.offset);
    expect(addr).toBe(hole + page());
    await native.munmap(hole, page());
    await native.munmap(hole + 2n * page(), page());
    live = [[addr, page()]];
    expect(await native.probe(addr, 'read')).toBe('ok');
    expect(await native.probe(addr - 1n, 'read')).toBe('SIGSEGV');
    expect(await native.probe(addr + page(), 'read')).toBe('SIGSEGV');
  });

  // catalogue E2 / J2: a forked child re-reaches every page through the copied PTEs (PFNMAP/MIXEDMAP,
  // vma_needs_copy, 6.1) or through ->fault; the child reads under a
  // watchdog, so a fault handler that never installs a PTE shows as ETIMEDOUT, not a hang.
  it('a forked child reads every sampled page as the parent does', { tags: ['core'] }, async (ctx) => {
    const source = t.needsWriter(ctx);
    await fillPatterns(source, sampled());
    const { addr } = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    // One child reads them all, after the parent read none: each page reaches it through the copied PTE or ->fault.
    const child = await t.dut.native.readInForkedChild(sampled().map((index) => addr + index * page()), Number(page()));
    for (const [i, index] of sampled().entries()) {
      const at = i * Number(page());
      expect(child.subarray(at, at + Number(page())), `page ${index} in the child`).toEqual(pagePattern(index, page()));
      expect(await t.dut.native.readBytes(addr + index * page(), Number(page())), `page ${index} in the parent`).toEqual(pagePattern(index, page()));
    }
  });

  // catalogue E1: a pattern written by this process is what a second process, mapping the device on
  // its own at each page's offset, reads.
  it('a second process mapping each sampled page on its own sees the pattern written by the first', async (ctx) => {
    t.needsInteriorOffsets(ctx);
    const source = t.needsWriter(ctx);
    await fillPatterns(source, sampled());
    for (const index of sampled()) {
      const seen = await t.mappings.readInChild(t.profile.device, t.dut.offset + index * page(), Number(page()));
      expect(seen, `page ${index}`).toEqual(pagePattern(index, page()));
    }
  });

  // catalogue E1, the other way: another process (a forked child of the agent) writes through its own
  // mapping; this process's existing mapping shows it without being remapped.
  it('a write by another process shows in this process\'s existing mapping', async (ctx) => {
    const source = t.needsWriter(ctx);
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    await t.dut.native.readBytes(addr, 8);
    await t.mappings.writeInChild(source, t.dut.offset, Buffer.from('from another process'));
    expect((await t.dut.native.readBytes(addr, 20)).toString()).toBe('from another process');
  });

  // catalogue E3 / C2: fork after the FIRST page of a MAP_PRIVATE PFN mapping was
  // written fails with ENOMEM on 6.1 and 6.12 (x86 PAT's track_pfn_copy; the row says why).
  // A kernel finding, not a driver bug: success or ENOMEM both pass, ENOMEM is annotated.
  it('fork after writing the first page of a MAP_PRIVATE mapping (ENOMEM is a kernel finding)', async (ctx) => {
    ctx.skip(t.profile.private === 'rejected', 'the profile says MAP_PRIVATE is refused');
    const { native, c } = t.dut;
    const length = pages() >= 2n ? 2n * page() : page();
    const addr = await t.needsPrivate(ctx, c.PROT_READ | c.PROT_WRITE, length, c.O_RDWR);
    // The device is watched through a second, shared mapping in this process: while the
    // failing case's mapping exists, every fork of this process fails, readInChild's included.
    const shared = await t.mappings.map(t.profile.device, { length: page(), prot: c.PROT_READ, openFlags: c.O_RDONLY });
    const before = await native.readBytes(shared.addr, 7);
    await native.writeBytes(addr, Buffer.from('private'));
    try {
      expect(await native.forkAndExit()).toBe(0);
      expect(await native.readInForkedChild(addr, 7)).toEqual(Buffer.from('private'));
      await ranBranch(ctx, 'forked; the child sees the private copy');
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOMEM') throw error;
      await ctx.annotate('kernel finding: fork fails with ENOMEM after a write to the first page of a MAP_PRIVATE PFN mapping (x86 PAT track_pfn_copy; measured on 6.1.192 and 6.12.117: the upstream 6.9 rework did not remove it; catalogue E3)');
      await ranBranch(ctx, 'fork failed with ENOMEM (kernel finding)');
    }
    // Either way the private copy and the device are as they were.
    t.needsStableContent(ctx);
    expect(await native.readBytes(addr, 7)).toEqual(Buffer.from('private'));
    expect(await native.readBytes(shared.addr, 7)).toEqual(before);
  });

  // catalogue E3: with only a later page written, fork works; the child shares the
  // COW copy of that page and still sees the device in the pages not written.
  it('fork after writing a later page of a MAP_PRIVATE mapping: the child sees the private copy and the device', async (ctx) => {
    ctx.skip(t.profile.private === 'rejected', 'the profile says MAP_PRIVATE is refused');
    ctx.skip(pages() < 2n, 'the device has fewer than 2 pages');
    t.needsStableContent(ctx);
    const { native, c } = t.dut;
    const addr = await t.needsPrivate(ctx, c.PROT_READ | c.PROT_WRITE, 2n * page(), c.O_RDWR);
    const device = await t.mappings.readInChild(t.profile.device, t.dut.offset, 16);
    await native.writeBytes(addr + page(), Buffer.from('private'));
    expect(await native.forkAndExit()).toBe(0);
    expect(await native.readInForkedChild(addr + page(), 7)).toEqual(Buffer.from('private'));
    expect(await native.readInForkedChild(addr, 16)).toEqual(device);
  });

  // catalogue B8 / mprotect: PROT_NONE makes every access SIGSEGV (SEGV_ACCERR); restoring PROT_READ
  // rewrites the PTEs (change_protection, 6.1 and 6.12) or re-faults: same content.
  it('mprotect to PROT_NONE and back keeps the content', async (ctx) => {
    const length = pages() >= 2n ? 2n * page() : page();
    const { addr } = await t.mappings.map(t.profile.device, { length, prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const before = await t.dut.native.readBytes(addr, Number(length));
    await t.dut.native.mprotect(addr, page(), t.dut.c.PROT_NONE);
    expect(await t.dut.native.probe(addr, 'read')).toBe('SIGSEGV');
    await t.dut.native.mprotect(addr, page(), t.dut.c.PROT_READ);
    t.needsStableContent(ctx);
    expect(await t.dut.native.readBytes(addr, Number(length))).toEqual(before);
  });

  /** /sys/module/<name>/refcnt, or undefined without a module. */
  const refcnt = async (): Promise<string | undefined> =>
    t.profile.module === undefined ? undefined : (await t.dut.guest.readFile(`/sys/module/${moduleName(t.profile.module)}/refcnt`)).trim();

  // Taxonomy #15: a driver's ->mmap error path must not leak or leave state behind. 200 out-of-range
  // mmaps (catalogue A6) are each refused (or SIGBUS past the end); the module refcount, the agent's
  // vmas of the device and the device's content stay as they were.
  it('200 refused out-of-range mmaps leave the device working', async (ctx) => {
    const { native, c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, c.O_RDONLY);
    const baseline = await t.mappings.readInChild(t.profile.device, t.dut.offset, 64);
    const refsBefore = await refcnt();
    const vmasBefore = await vmaCount(t, t.profile.device);
    const past = t.dut.offset + t.dut.size;
    // The mmaps go in batches (one request, the same calls in the same order) that stop at the
    // first one accepted, so that each accepted mapping is probed and unmapped before the next mmap.
    for (let i = 0; i < 200; ) {
      const attempts: NativeCall[] = [];
      for (let j = i; j < 200; j++) attempts.push({ fn: 'mmap', args: [0n, page(), c.PROT_READ, c.MAP_SHARED, fd, past + BigInt(j % 4) * page()] });
      for (const attempt of await t.dut.guest.nativeBatch(attempts, 'ok')) {
        i++;
        if (!attempt.ok) {
          expect(REFUSALS).toContain(attempt.error.code);
          continue;
        }
        const addr = attempt.value as bigint;
        expect(await native.probe(addr, 'read')).toBe('SIGBUS');
        await native.munmap(addr, page());
      }
    }
    expect(await refcnt()).toBe(refsBefore);
    expect(await vmaCount(t, t.profile.device)).toBe(vmasBefore);
    t.needsStableContent(ctx);
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: c.PROT_READ, openFlags: c.O_RDONLY });
    expect(await native.readBytes(addr, 64)).toEqual(baseline);
  });

  // Taxonomy #15 with the kernel's and the driver's own refusals: O_RDONLY + PROT_WRITE (catalogue B2,
  // kernel) and, where the profile refuses them, MAP_PRIVATE (catalogue C1) or writable (catalogue B4) mappings,
  // 200 times each kind; nothing may be left behind.
  it('200 refused mmaps of each other kind leave the device working', async (ctx) => {
    const { native, c } = t.dut;
    // A setup's object has no O_RDONLY fd (every open is a dup of its O_RDWR one): the kernel's refusal is left out.
    const ro = t.profile.setup === undefined ? await t.mappings.open(t.profile.device, c.O_RDONLY) : undefined;
    const rw = await t.mappings.open(t.profile.device, c.O_RDWR);
    const baseline = await t.mappings.readInChild(t.profile.device, t.dut.offset, 64);
    const refsBefore = await refcnt();
    const vmasBefore = await vmaCount(t, t.profile.device);
    const attempts: { fd: number; prot: number; flags: number; codes: string[] }[] = [];
    if (ro !== undefined) attempts.push({ fd: ro, prot: c.PROT_READ | c.PROT_WRITE, flags: c.MAP_SHARED, codes: ['EACCES'] });
    if (t.profile.private === 'rejected') attempts.push({ fd: rw, prot: c.PROT_READ | c.PROT_WRITE, flags: c.MAP_PRIVATE, codes: REFUSALS });
    if (!t.profile.writable) attempts.push({ fd: rw, prot: c.PROT_READ | c.PROT_WRITE, flags: c.MAP_SHARED, codes: WRITE_REFUSALS });
    ctx.skip(attempts.length === 0, "the profile allows every other kind, and a setup's object has no O_RDONLY fd: nothing is refused");
    for (const { fd, prot, flags, codes } of attempts) {
      // 200 mmaps in one request (the same calls in the same order), stopping at one accepted.
      const calls: NativeCall[] = Array.from({ length: 200 }, () => ({ fn: 'mmap', args: [0n, page(), prot, flags, fd, t.dut.offset] }));
      const outcomes = await t.dut.guest.nativeBatch(calls, 'ok');
      for (const outcome of outcomes) {
        expect(outcome).toMatchObject({ ok: false, error: { code: expect.stringMatching(new RegExp(`^(${codes.join('|')})$`)) } });
      }
      expect(outcomes).toHaveLength(200);
    }
    expect(await refcnt()).toBe(refsBefore);
    expect(await vmaCount(t, t.profile.device)).toBe(vmasBefore);
    t.needsStableContent(ctx);
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: c.PROT_READ, openFlags: c.O_RDONLY });
    expect(await native.readBytes(addr, 64)).toEqual(baseline);
  });
});
