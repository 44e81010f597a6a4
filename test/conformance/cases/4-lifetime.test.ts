/**
 * Lifetime and sharing (catalogue D1, D2, E2).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 */
import { expect, it } from 'vitest';
import { moduleName } from '../../../tools/qemu/guest-modules.js';
import { zeroBuffer } from '../mappings.js';
import { describeProfiles, ranBranch } from '../profile-suite.js';

describeProfiles('lifetime and sharing', (t) => {
  // catalogue D1: the VMA holds its own reference to the file (get_file in __mmap_region); ->release
  // only runs at the last munmap (fput in remove_vma; both 6.1 and 6.12).
  it('the mapping stays valid after close(fd)', { tags: ['core'] }, async (ctx) => {
    t.needsStableContent(ctx);
    const { fd, addr } = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const before = await t.dut.native.readBytes(addr, Number(t.dut.page));
    await t.dut.native.close(fd);
    expect(await t.dut.native.readBytes(addr, Number(t.dut.page))).toEqual(before);
    // With a way to write, also check the mapping still sees new content.
    const writer = t.writer;
    if (writer === undefined) {
      await ranBranch(ctx, 'the content read the same; no writer, so no new content was checked');
    } else {
      t.mappings.later(() => zeroBuffer(t.dut, writer));
      const written = await t.mappings.map(writer, { length: t.dut.page });
      await t.dut.native.writeBytes(written.addr, Buffer.from('still mapped'));
      expect(await t.dut.native.readBytes(addr, 12)).toEqual(Buffer.from('still mapped'));
      await ranBranch(ctx, 'the content read the same, and a write through the writer showed');
    }
  });

  // catalogue D2: the open file pins the module (fops.owner: chrdev_open, misc_open) until the last
  // VMA drops it (__fput), so delete_module(O_NONBLOCK) says EWOULDBLOCK (try_stop_module, 6.1;
  // the rest 6.1 and 6.12). Without .owner the module, and the memory under the
  // mapping, can go while the mapping lives (taxonomy #8, #9).
  it('the module cannot be unloaded while a mapping outlives its fd', { tags: ['core'] }, async (ctx) => {
    ctx.skip(t.profile.module === undefined, 'the profile names no module to unload');
    const { fd, addr } = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_READ, length: t.dut.page, openFlags: t.dut.c.O_RDONLY });
    await t.dut.native.close(fd);
    const name = moduleName(t.profile.module!);
    await expect(t.dut.native.deleteModule(name, t.dut.c.O_NONBLOCK)).rejects.toMatchObject({ code: 'EAGAIN' });
    expect(await t.dut.native.probe(addr, 'read')).toBe('ok');
  });

  // catalogue E2: fork copies PFNMAP/MIXEDMAP PTEs (vma_needs_copy in copy_page_range, 6.1) or re-faults
  // them; either way the child sees the same memory.
  it('a forked child sees the parent\'s shared mapping', async (ctx) => {
    const source = t.needsWriter(ctx);
    const { addr } = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_READ, length: t.dut.page });
    const written = await t.mappings.map(source, { length: t.dut.page });
    await t.dut.native.writeBytes(written.addr + 9n, Buffer.from('before fork'));
    expect(await t.dut.native.readInForkedChild(addr + 9n, 11)).toEqual(Buffer.from('before fork'));
  });
});
