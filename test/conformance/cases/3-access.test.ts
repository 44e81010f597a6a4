/**
 * Access modes and protections (catalogue B1-B8, C1-C4, A9).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 */
import { expect, it } from 'vitest';
import { zeroBuffer } from '../mappings.js';
import { WRITE_REFUSALS, describeProfiles, ranBranch } from '../profile-suite.js';
import { outcome } from './vma.js';

describeProfiles('access modes and protections', (t) => {
  // catalogue B1: read access is always required (do_mmap, 6.1 and 6.12).
  it('any mapping of an O_WRONLY fd is refused with EACCES (kernel)', async (ctx) => {
    t.needsAccessMode(ctx);
    const fd = await t.mappings.open(t.profile.device, t.dut.c.O_WRONLY);
    await expect(t.dut.native.mmap(0n, t.dut.page, t.dut.c.PROT_READ, t.dut.c.MAP_SHARED, fd, t.dut.offset)).rejects.toMatchObject({ code: 'EACCES' });
  });

  // catalogue B2: do_mmap (6.1 and 6.12).
  it('a shared writable mapping of an O_RDONLY fd is refused with EACCES (kernel)', { tags: ['core'] }, async (ctx) => {
    t.needsAccessMode(ctx);
    const fd = await t.mappings.open(t.profile.device, t.dut.c.O_RDONLY);
    const prot = t.dut.c.PROT_READ | t.dut.c.PROT_WRITE;
    await expect(t.dut.native.mmap(0n, t.dut.page, prot, t.dut.c.MAP_SHARED, fd, t.dut.offset)).rejects.toMatchObject({ code: 'EACCES' });
  });

  // catalogue B3: the kernel clears VM_SHARED and VM_MAYWRITE (do_mmap, 6.1 and 6.12); a driver
  // that tests VM_SHARED instead of is_cow_mapping() wrongly refuses this (the row's pitfall).
  it('a shared read-only mapping of an O_RDONLY fd works, and mprotect cannot add PROT_WRITE', async (ctx) => {
    t.needsAccessMode(ctx);
    const { addr } = await t.mappings.map(t.profile.device, { length: t.dut.page, prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    expect(await t.dut.native.probe(addr, 'read')).toBe('ok');
    await expect(t.dut.native.mprotect(addr, t.dut.page, t.dut.c.PROT_READ | t.dut.c.PROT_WRITE)).rejects.toMatchObject({ code: 'EACCES' });
  });

  // catalogue B7: PTEs follow vma->vm_page_prot; a driver hard-coding PAGE_SHARED makes this write succeed (taxonomy #6).
  it('a write to a PROT_READ mapping raises SIGSEGV and changes nothing', { tags: ['core'] }, async (ctx) => {
    const { addr } = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_READ, length: t.dut.page });
    const before = await t.dut.native.readBytes(addr, 1);
    expect(await t.dut.native.probe(addr, 'write')).toBe('SIGSEGV');
    t.needsStableContent(ctx);
    expect(await t.mappings.readInChild(t.profile.device, t.dut.offset, 1)).toEqual(before);
  });

  if (t.profile.protNone === 'mapped') {
    // catalogue B8: PROT_NONE: any access faults with SIGSEGV.
    it('any access to a PROT_NONE mapping raises SIGSEGV', async () => {
      const { addr } = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_NONE, length: t.dut.page });
      expect(await t.dut.native.probe(addr, 'read')).toBe('SIGSEGV');
      expect(await t.dut.native.probe(addr, 'write')).toBe('SIGSEGV');
    });
  } else {
    // catalogue B8, driver override (profile protNone "rejected"): a driver whose API maps its buffer
    // only to be read or written refuses a VMA with neither VM_READ nor VM_WRITE, with EINVAL
    // (vb2_mmap on a capture queue, snd_pcm_mmap_data; 6.1 and 6.12). A mprotect to PROT_NONE of a
    // readable mapping is the kernel's and still faults (9-faults: "mprotect to PROT_NONE and back").
    it('a PROT_NONE mapping is refused with EINVAL (profile protNone: rejected)', async () => {
      expect(await outcome(t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_NONE, length: t.dut.page }))).toBe('EINVAL');
    });
  }

  if (t.profile.writable) {
    // catalogue B4: O_RDWR + MAP_SHARED + PROT_READ, then mprotect(+W): change_protection makes the PTEs writable.
    it('mprotect adds PROT_WRITE to a shared mapping of an O_RDWR fd', async (ctx) => {
      t.needsStableContent(ctx);
      t.mappings.later(() => zeroBuffer(t.dut, t.profile.device));
      const { addr } = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_READ, length: t.dut.page });
      await t.dut.native.mprotect(addr, t.dut.page, t.dut.c.PROT_READ | t.dut.c.PROT_WRITE);
      await t.dut.native.writeBytes(addr, Buffer.from([0x5a]));
      expect(await t.mappings.readInChild(t.profile.device, t.dut.offset, 1)).toEqual(Buffer.from([0x5a]));
    });
  } else {
    // catalogue B4, driver override: a device that is not writable refuses VM_WRITE and clears VM_MAYWRITE.
    it('a shared writable mapping of an O_RDWR fd is refused', async () => {
      const fd = await t.mappings.open(t.profile.device, t.dut.c.O_RDWR);
      const prot = t.dut.c.PROT_READ | t.dut.c.PROT_WRITE;
      const attempt = t.dut.native.mmap(0n, t.dut.page, prot, t.dut.c.MAP_SHARED, fd, t.dut.offset);
      expect(WRITE_REFUSALS).toContain(await outcome(attempt));
    });

    it('mprotect cannot add PROT_WRITE to a shared mapping of an O_RDWR fd', async () => {
      const { addr } = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_READ, length: t.dut.page });
      await expect(t.dut.native.mprotect(addr, t.dut.page, t.dut.c.PROT_READ | t.dut.c.PROT_WRITE)).rejects.toMatchObject({
        code: 'EACCES',
      });
    });
  }

  // catalogue C1-C4: MAP_PRIVATE with PROT_WRITE is copy-on-write (the device keeps its bytes) or refused.
  // A refusal is checked by mapPrivate: the profile must allow it, with one of the driver refusals.
  it(`MAP_PRIVATE with PROT_WRITE is ${t.profile.private === 'any' ? 'COW or refused' : t.profile.private === 'cow' ? 'copy-on-write' : 'refused'}`, { tags: ['core'] }, async (ctx) => {
    const { native, c } = t.dut;
    const length = t.dut.size >= 2n * t.dut.page ? 2n * t.dut.page : t.dut.page;
    const mapped = await t.mapPrivate(c.PROT_READ | c.PROT_WRITE, length, c.O_RDWR);
    if ('refused' in mapped) {
      await ranBranch(ctx, `refused with ${mapped.refused}`);
    } else {
      expect(t.profile.private, 'the profile promises that MAP_PRIVATE is refused').not.toBe('rejected');
      t.needsStableContent(ctx);
      const at = length - t.dut.page;
      const before = await t.mappings.readInChild(t.profile.device, t.dut.offset + at, 7);
      await native.writeBytes(mapped.addr + at, Buffer.from('private'));
      expect(await native.readBytes(mapped.addr + at, 7)).toEqual(Buffer.from('private'));
      expect(await t.mappings.readInChild(t.profile.device, t.dut.offset + at, 7)).toEqual(before);
      await ranBranch(ctx, 'copy-on-write');
    }
  });

  // catalogue A9: MAP_FIXED_NOREPLACE over an existing mapping (do_mmap, 6.1 and 6.12).
  it('MAP_FIXED_NOREPLACE over an existing mapping is refused with EEXIST (kernel)', async () => {
    const { native, c } = t.dut;
    const { addr, fd } = await t.mappings.map(t.profile.device, { prot: c.PROT_READ, length: t.dut.page });
    const attempt = native.mmap(addr, t.dut.page, c.PROT_READ, c.MAP_SHARED | c.MAP_FIXED_NOREPLACE, fd, t.dut.offset);
    await expect(attempt).rejects.toMatchObject({ code: 'EEXIST' });
  });
});
