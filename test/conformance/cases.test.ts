/**
 * The conformance cases, run against every profile of the run (by default
 * the reference driver's profiles in test/profiles/). Each case names the
 * row of shared/reference/mmap-semantics.md it checks and the kernel source
 * (Debian linux-source-6.1, 6.1.192) behind it. Where the catalogue lets a
 * driver choose, the case accepts every correct choice unless the profile
 * pins one; a case the profile rules out is skipped with the reason.
 * Cases that write restore zeroes afterwards.
 */
import { type TestContext, afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Profile } from '../../tools/profile.js';
import { type DeviceUnderTest, moduleName, openProfileTarget, pagePattern } from './device.js';
import { Mappings, zeroBuffer } from './mappings.js';

/** Errnos a driver may refuse a mapping with (catalogue A6, B5, C1: EINVAL, EAGAIN, EPERM, EACCES). */
const REFUSALS = ['EINVAL', 'EAGAIN', 'EPERM', 'EACCES', 'ENXIO'];

describe.each(inject('profiles').map((profile) => [profile.name, profile] as const))('%s', (_name, profile: Profile) => {
  let dut: DeviceUnderTest;
  let mappings: Mappings;
  /** A path that can be mapped writable over the same memory: the device itself, or the profile's writer. */
  const writer = profile.writable ? profile.device : profile.writer;

  beforeAll(async () => {
    dut = await openProfileTarget(profile);
    mappings = new Mappings(dut);
  });
  afterEach(() => mappings.release());
  afterAll(() => dut.close());

  /** Skips a case that needs to write content when the profile offers no way to. */
  const needsWriter = (ctx: TestContext): string => {
    ctx.skip(writer === undefined, 'the profile allows no writable mapping (writable: false, no writer)');
    mappings.later(() => zeroBuffer(dut, writer!));
    return writer!;
  };

  describe('content and offsets', () => {
    // A2, bug #5 (stale data): nothing left over from earlier users of the memory may show.
    // Read in a forked child with a watchdog (catalogue section 5, note 2): a fault handler
    // that never installs a PTE (J2, bug #11) must fail this case, not hang the agent.
    it('a whole-device map reads zero right after load', async (ctx) => {
      ctx.skip(profile.initial !== 'zero', 'the profile says the initial content is device-defined');
      const bytes = await dut.native.readInChild(profile.device, dut.offset, Number(dut.size));
      expect(bytes.length).toBe(Number(dut.size));
      expect(bytes.findIndex((byte) => byte !== 0)).toBe(-1);
    });

    // E1: two MAP_SHARED mappings of one offset are the same memory, in one process or two.
    it('a write through one mapping is seen through a second mapping and by a second process', async (ctx) => {
      const source = needsWriter(ctx);
      const first = await mappings.map(source);
      const second = await mappings.map(profile.device, { prot: dut.c.PROT_READ, openFlags: dut.c.O_RDONLY });
      const message = Buffer.from(`written through ${source}`);
      const at = dut.size > dut.page ? dut.page + 123n : 123n;
      await dut.native.writeBytes(first.addr + at, message);
      expect(await dut.native.readBytes(second.addr + at, message.length)).toEqual(message);
      // readInChild forks a child that opens and maps the device on its own (from a page boundary).
      const within = at % dut.page;
      const seen = await dut.native.readInChild(profile.device, dut.offset + at - within, Number(within) + message.length);
      expect(seen.subarray(Number(within))).toEqual(message);
    });

    // A6/A7: vm_pgoff selects the page. A driver that ignores or truncates it shows page 0.
    it('a map at page offset k shows page k', async (ctx) => {
      const source = needsWriter(ctx);
      const pages = dut.size / dut.page;
      const whole = await mappings.map(source);
      for (let index = 0n; index < pages; index++) {
        await dut.native.writeBytes(whole.addr + index * dut.page, pagePattern(index, dut.page));
      }
      for (const k of new Set([0n, 1n % pages, pages / 2n, pages - 1n])) {
        const offset = dut.offset + k * dut.page;
        const { addr } = await mappings.map(profile.device, { length: dut.page, offset, prot: dut.c.PROT_READ });
        expect(await dut.native.readBytes(addr, Number(dut.page))).toEqual(pagePattern(k, dut.page));
      }
    });

    // F: unmapping one page splits the VMA; the pages left keep their place and content.
    it('after a partial munmap the remaining pages keep their content', async (ctx) => {
      ctx.skip(dut.size < 3n * dut.page, 'the device has fewer than 3 pages');
      const source = needsWriter(ctx);
      const whole = await mappings.map(source, { length: 3n * dut.page });
      for (const index of [0n, 1n, 2n]) await dut.native.writeBytes(whole.addr + index * dut.page, pagePattern(index, dut.page));
      const view = await mappings.map(profile.device, { length: 3n * dut.page, prot: dut.c.PROT_READ });
      await dut.native.munmap(view.addr + dut.page, dut.page);
      expect(await dut.native.readBytes(view.addr, Number(dut.page))).toEqual(pagePattern(0n, dut.page));
      expect(await dut.native.readBytes(view.addr + 2n * dut.page, Number(dut.page))).toEqual(pagePattern(2n, dut.page));
      expect(await dut.native.probe(view.addr + dut.page, 'read')).toBe('SIGSEGV');
    });

    it('read() and write() at an offset mirror the mapping', async (ctx) => {
      ctx.skip(!profile.readWrite, 'the profile says read()/write() do not mirror the mapping');
      mappings.later(() => zeroBuffer(dut, profile.device));
      const { addr } = await mappings.map(profile.device, { length: dut.page });
      const sh = (script: string): Promise<string> => dut.guest.run(['sh', '-c', script]);
      await sh(`printf 'through write()' | dd of=${profile.device} bs=1 seek=${dut.offset + 7n} conv=notrunc status=none`);
      expect((await dut.native.readBytes(addr + 7n, 15)).toString()).toBe('through write()');
      await dut.native.writeBytes(addr + 100n, Buffer.from('through the mapping'));
      expect(await sh(`dd if=${profile.device} bs=1 skip=${dut.offset + 100n} count=19 status=none`)).toBe('through the mapping');
    });
  });

  describe('bounds (A6: the driver refuses what lies past its region)', () => {
    /** Out of range: refused outright, or every page past the end faults (catalogue A6, the fb/usbmon choice). */
    const expectOutOfRange = async (length: bigint, offset: bigint, firstBadPage = 0n): Promise<void> => {
      const { native, c } = dut;
      const fd = await mappings.open(profile.device, c.O_RDONLY);
      let addr: bigint;
      try {
        addr = await native.mmap(0n, length, c.PROT_READ, c.MAP_SHARED, fd, offset);
      } catch (error) {
        expect(REFUSALS).toContain((error as { code?: string }).code);
        return;
      }
      mappings.later(() => native.munmap(addr, length));
      // Never acceptable: success followed by readable bytes past the device end.
      for (let page = firstBadPage; page * dut.page < length; page++) {
        expect(await native.probe(addr + page * dut.page, 'read')).toBe('SIGBUS');
      }
    };
    const end = (): bigint => dut.offset + dut.size;

    it('a length one page past the region', () => expectOutOfRange(dut.size + dut.page, dut.offset, dut.size / dut.page));
    it('an offset at the end of the region', () => expectOutOfRange(dut.page, end()));
    it('an offset 16 pages past the end', () => expectOutOfRange(dut.page, end() + 16n * dut.page));
    // The straddle: the first page is inside, the second is not.
    it('two pages at offset end - page', () => expectOutOfRange(2n * dut.page, end() - dut.page, 1n));
    // A7, bug #2: offsets that truncate to the region's start in 32 bits must not alias it.
    it('offset 2^32 + region offset (truncates to the region in 32 bits)', () => expectOutOfRange(dut.page, (1n << 32n) + dut.offset));
    it('offset 2^31 pages (2^43 bytes)', () => expectOutOfRange(dut.page, (1n << 31n) * dut.page + dut.offset));
    it('offset 2^44 (pgoff 2^32, page 0 when truncated to 32 bits)', () => expectOutOfRange(dut.page, (1n << 44n) + dut.offset));
    // A5: the core rejects pgoff past ULONG_MAX - len (mm/mmap.c:1234-1264, EOVERFLOW); 2^64-2 pages reaches the driver.
    it('offset 2^64 - 2 pages (the driver sees it; it must refuse)', () => expectOutOfRange(dut.page, (1n << 64n) - 2n * dut.page));
    // A1: mm/mmap.c:1281-1282 refuses a zero length before any driver code runs.
    it('a zero length is refused with EINVAL (kernel, mm/mmap.c:1281)', async () => {
      const fd = await mappings.open(profile.device, dut.c.O_RDONLY);
      await expect(dut.native.mmap(0n, 0n, dut.c.PROT_READ, dut.c.MAP_SHARED, fd, dut.offset)).rejects.toMatchObject({ code: 'EINVAL' });
    });
    // A4: arch/x86/kernel/sys_x86_64.c:90-91 refuses an offset that is not page aligned.
    it('an unaligned offset is refused with EINVAL (kernel)', async () => {
      const fd = await mappings.open(profile.device, dut.c.O_RDONLY);
      await expect(dut.native.mmap(0n, dut.page, dut.c.PROT_READ, dut.c.MAP_SHARED, fd, dut.offset + 1n)).rejects.toMatchObject({ code: 'EINVAL' });
    });
    // F1: growing a mapping must not reach past the region: EFAULT for VM_DONTEXPAND/VM_PFNMAP
    // vmas (mm/mremap.c:826-827), or the new page faults.
    it('mremap cannot grow a mapping past the region', async () => {
      const { native, c } = dut;
      const { addr } = await mappings.map(profile.device, { prot: c.PROT_READ, openFlags: c.O_RDONLY });
      let grown: bigint;
      try {
        grown = await native.mremap(addr, dut.size, dut.size + dut.page, c.MREMAP_MAYMOVE);
      } catch (error) {
        expect((error as { code?: string }).code).toMatch(/^E/);
        return;
      }
      mappings.later(() => native.munmap(grown, dut.size + dut.page));
      expect(await native.probe(grown + dut.size, 'read')).not.toBe('ok');
    });
  });

  describe('access modes and protections', () => {
    // B1: read access is always required, mm/mmap.c:1391-1392.
    it('any mapping of an O_WRONLY fd is refused with EACCES (kernel)', async () => {
      const fd = await mappings.open(profile.device, dut.c.O_WRONLY);
      await expect(dut.native.mmap(0n, dut.page, dut.c.PROT_READ, dut.c.MAP_SHARED, fd, dut.offset)).rejects.toMatchObject({ code: 'EACCES' });
    });

    // B2: mm/mmap.c:1370-1372.
    it('a shared writable mapping of an O_RDONLY fd is refused with EACCES (kernel)', async () => {
      const fd = await mappings.open(profile.device, dut.c.O_RDONLY);
      const prot = dut.c.PROT_READ | dut.c.PROT_WRITE;
      await expect(dut.native.mmap(0n, dut.page, prot, dut.c.MAP_SHARED, fd, dut.offset)).rejects.toMatchObject({ code: 'EACCES' });
    });

    // B3: the kernel clears VM_SHARED and VM_MAYWRITE (mm/mmap.c:1385-1386); a driver that tests
    // VM_SHARED instead of is_cow_mapping() wrongly refuses this (catalogue section 6, "Pitfall").
    it('a shared read-only mapping of an O_RDONLY fd works, and mprotect cannot add PROT_WRITE', async () => {
      const { addr } = await mappings.map(profile.device, { length: dut.page, prot: dut.c.PROT_READ, openFlags: dut.c.O_RDONLY });
      expect(await dut.native.probe(addr, 'read')).toBe('ok');
      await expect(dut.native.mprotect(addr, dut.page, dut.c.PROT_READ | dut.c.PROT_WRITE)).rejects.toMatchObject({ code: 'EACCES' });
    });

    // B7: PTEs follow vma->vm_page_prot; a driver hard-coding PAGE_SHARED makes this write succeed (bug #6).
    it('a write to a PROT_READ mapping raises SIGSEGV and changes nothing', async () => {
      const { addr } = await mappings.map(profile.device, { prot: dut.c.PROT_READ, length: dut.page });
      const before = await dut.native.readBytes(addr, 1);
      expect(await dut.native.probe(addr, 'write')).toBe('SIGSEGV');
      expect(await dut.native.readInChild(profile.device, dut.offset, 1)).toEqual(before);
    });

    // B8: PROT_NONE: any access faults with SIGSEGV.
    it('any access to a PROT_NONE mapping raises SIGSEGV', async () => {
      const { addr } = await mappings.map(profile.device, { prot: dut.c.PROT_NONE, length: dut.page });
      expect(await dut.native.probe(addr, 'read')).toBe('SIGSEGV');
      expect(await dut.native.probe(addr, 'write')).toBe('SIGSEGV');
    });

    if (profile.writable) {
      // B4: O_RDWR + MAP_SHARED + PROT_READ, then mprotect(+W): change_protection makes the PTEs writable.
      it('mprotect adds PROT_WRITE to a shared mapping of an O_RDWR fd', async () => {
        mappings.later(() => zeroBuffer(dut, profile.device));
        const { addr } = await mappings.map(profile.device, { prot: dut.c.PROT_READ, length: dut.page });
        await dut.native.mprotect(addr, dut.page, dut.c.PROT_READ | dut.c.PROT_WRITE);
        await dut.native.writeBytes(addr, Buffer.from([0x5a]));
        expect(await dut.native.readInChild(profile.device, dut.offset, 1)).toEqual(Buffer.from([0x5a]));
      });
    } else {
      // B4, driver override: a device that is not writable refuses VM_WRITE and clears VM_MAYWRITE.
      it('a shared writable mapping of an O_RDWR fd is refused', async () => {
        const fd = await mappings.open(profile.device, dut.c.O_RDWR);
        const prot = dut.c.PROT_READ | dut.c.PROT_WRITE;
        const attempt = dut.native.mmap(0n, dut.page, prot, dut.c.MAP_SHARED, fd, dut.offset);
        await expect(attempt).rejects.toMatchObject({ code: expect.stringMatching(/^(EACCES|EPERM)$/) });
      });

      it('mprotect cannot add PROT_WRITE to a shared mapping of an O_RDWR fd', async () => {
        const { addr } = await mappings.map(profile.device, { prot: dut.c.PROT_READ, length: dut.page });
        await expect(dut.native.mprotect(addr, dut.page, dut.c.PROT_READ | dut.c.PROT_WRITE)).rejects.toMatchObject({
          code: 'EACCES',
        });
      });
    }

    // C1-C4: MAP_PRIVATE with PROT_WRITE is copy-on-write (the device keeps its bytes) or refused.
    it(`MAP_PRIVATE with PROT_WRITE is ${profile.private === 'any' ? 'COW or refused' : profile.private === 'cow' ? 'copy-on-write' : 'refused'}`, async () => {
      const { native, c } = dut;
      const fd = await mappings.open(profile.device, c.O_RDWR);
      const length = dut.size >= 2n * dut.page ? 2n * dut.page : dut.page;
      let addr: bigint;
      try {
        addr = await native.mmap(0n, length, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE, fd, dut.offset);
      } catch (error) {
        expect(profile.private, 'the profile promises copy-on-write').not.toBe('cow');
        expect(REFUSALS).toContain((error as { code?: string }).code);
        return;
      }
      mappings.later(() => native.munmap(addr, length));
      expect(profile.private, 'the profile promises that MAP_PRIVATE is refused').not.toBe('rejected');
      const at = length - dut.page;
      const before = await native.readInChild(profile.device, dut.offset + at, 7);
      await native.writeBytes(addr + at, Buffer.from('private'));
      expect(await native.readBytes(addr + at, 7)).toEqual(Buffer.from('private'));
      expect(await native.readInChild(profile.device, dut.offset + at, 7)).toEqual(before);
    });

    // A9: MAP_FIXED_NOREPLACE over an existing mapping, mm/mmap.c:1321-1323.
    it('MAP_FIXED_NOREPLACE over an existing mapping is refused with EEXIST (kernel)', async () => {
      const { native, c } = dut;
      const { addr, fd } = await mappings.map(profile.device, { prot: c.PROT_READ, length: dut.page });
      const attempt = native.mmap(addr, dut.page, c.PROT_READ, c.MAP_SHARED | c.MAP_FIXED_NOREPLACE, fd, dut.offset);
      await expect(attempt).rejects.toMatchObject({ code: 'EEXIST' });
    });
  });

  describe('lifetime and sharing', () => {
    // D1: the VMA holds its own reference to the file (get_file, mm/mmap.c:2779); ->release
    // only runs at the last munmap (fput in remove_vma, mm/mmap.c:137-142).
    it('the mapping stays valid after close(fd)', async () => {
      const { fd, addr } = await mappings.map(profile.device, { prot: dut.c.PROT_READ, openFlags: dut.c.O_RDONLY });
      const before = await dut.native.readBytes(addr, Number(dut.page));
      await dut.native.close(fd);
      expect(await dut.native.readBytes(addr, Number(dut.page))).toEqual(before);
      if (writer === undefined) return;
      mappings.later(() => zeroBuffer(dut, writer));
      const written = await mappings.map(writer, { length: dut.page });
      await dut.native.writeBytes(written.addr, Buffer.from('still mapped'));
      expect(await dut.native.readBytes(addr, 12)).toEqual(Buffer.from('still mapped'));
    });

    // D2: the open file pins the module (fops.owner: fs/char_dev.c:408) until the last VMA drops
    // it (fs/file_table.c:325), so delete_module(O_NONBLOCK) says EWOULDBLOCK
    // (kernel/module/main.c:664-671). Without .owner the module, and the memory under the
    // mapping, can go while the mapping lives (bugs #8, #9).
    it('the module cannot be unloaded while a mapping outlives its fd', async (ctx) => {
      ctx.skip(profile.module === undefined, 'the profile names no module to unload');
      const { fd, addr } = await mappings.map(profile.device, { prot: dut.c.PROT_READ, length: dut.page, openFlags: dut.c.O_RDONLY });
      await dut.native.close(fd);
      const name = moduleName(profile.module!);
      await expect(dut.native.deleteModule(name, dut.c.O_NONBLOCK)).rejects.toMatchObject({ code: 'EAGAIN' });
      expect(await dut.native.probe(addr, 'read')).toBe('ok');
    });

    // E2: fork copies PFNMAP/MIXEDMAP PTEs (vma_needs_copy, mm/memory.c:1262-1263) or re-faults
    // them; either way the child sees the same memory.
    it('a forked child sees the parent\'s shared mapping', async (ctx) => {
      const source = needsWriter(ctx);
      const { addr } = await mappings.map(profile.device, { prot: dut.c.PROT_READ, length: dut.page });
      const written = await mappings.map(source, { length: dut.page });
      await dut.native.writeBytes(written.addr + 9n, Buffer.from('before fork'));
      expect(await dut.native.readInForkedChild(addr + 9n, 11)).toEqual(Buffer.from('before fork'));
    });
  });
});
