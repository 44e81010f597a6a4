/**
 * Content and offsets: what the device shows where (catalogue A2, A6, A7, E1, F7).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 */
import { expect, it } from 'vitest';
import { pagePattern, writePagePatterns } from '../device.js';
import { zeroBuffer } from '../mappings.js';
import { describeProfiles } from '../profile-suite.js';

describeProfiles('content and offsets', (t) => {
  // catalogue A2, taxonomy #5 (stale data): nothing left over from earlier users of the memory may show.
  // The content was read when the run first opened the profile, before any case wrote to it,
  // through a mapping made for it, with the addon's watchdog (tools/test/region-record.ts).
  it('a whole-device map reads zero right after load', { tags: ['core'] }, async (ctx) => {
    ctx.skip(t.profile.initial !== 'zero', 'the profile says the initial content is device-defined');
    t.needsStableContent(ctx);
    const initial = t.dut.initial;
    if ('error' in initial) throw new Error(`reading the whole region (through a mapping of its own, with the addon's watchdog) failed: ${initial.error}`);
    expect(initial.nonZero, `the first non-zero byte is at offset ${initial.firstNonZero}`).toBe(0);
  });

  // catalogue E1: two MAP_SHARED mappings of one offset are the same memory, in one process or two.
  it('a write through one mapping is seen through a second mapping and by a second process', { tags: ['core'] }, async (ctx) => {
    const source = t.needsWriter(ctx);
    const first = await t.mappings.map(source);
    const second = await t.mappings.map(t.profile.device, { prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const message = Buffer.from(`written through ${source}`);
    const at = t.dut.size > t.dut.page ? t.dut.page + 123n : 123n;
    await t.dut.native.writeBytes(first.addr + at, message);
    expect(await t.dut.native.readBytes(second.addr + at, message.length)).toEqual(message);
    // readInChild forks a child that maps the device on its own, from the region's start (a driver
    // may map its region only from there: profile interiorOffsets).
    const seen = await t.mappings.readInChild(t.profile.device, t.dut.offset, Number(at) + message.length);
    expect(seen.subarray(Number(at))).toEqual(message);
  });

  // catalogue A6, A7: vm_pgoff selects the page. A driver that ignores or truncates it shows page 0.
  it('a map at page offset k shows page k', { tags: ['core'] }, async (ctx) => {
    t.needsInteriorOffsets(ctx);
    const source = t.needsWriter(ctx);
    const pages = t.dut.size / t.dut.page;
    const sampled = new Set([0n, 1n % pages, pages / 2n, pages - 1n]);
    const whole = await t.mappings.map(source);
    // Each page's pattern is its own, so a page k shown at another offset, written or not, shows
    // something else: only the sampled pages need one, and the other pages' first touches cost a
    // fault each, 256 of them on the reference driver's 1 MiB devices.
    for (const k of sampled) await writePagePatterns(t.dut, whole.addr + k * t.dut.page, k, 1n);
    for (const k of sampled) {
      const offset = t.dut.offset + k * t.dut.page;
      const { addr } = await t.mappings.map(t.profile.device, { length: t.dut.page, offset, prot: t.dut.c.PROT_READ });
      expect(await t.dut.native.readBytes(addr, Number(t.dut.page))).toEqual(pagePattern(k, t.dut.page));
    }
  });

  // catalogue F7: unmapping one page splits the VMA; the pages left keep their place and content.
  it('after a partial munmap the remaining pages keep their content', async (ctx) => {
    ctx.skip(t.dut.size < 3n * t.dut.page, 'the device has fewer than 3 pages');
    const source = t.needsWriter(ctx);
    const whole = await t.mappings.map(source, { length: 3n * t.dut.page });
    await writePagePatterns(t.dut, whole.addr, 0n, 3n);
    const view = await t.mappings.map(t.profile.device, { length: 3n * t.dut.page, prot: t.dut.c.PROT_READ });
    await t.dut.native.munmap(view.addr + t.dut.page, t.dut.page);
    expect(await t.dut.native.readBytes(view.addr, Number(t.dut.page))).toEqual(pagePattern(0n, t.dut.page));
    expect(await t.dut.native.readBytes(view.addr + 2n * t.dut.page, Number(t.dut.page))).toEqual(pagePattern(2n, t.dut.page));
    expect(await t.dut.native.probe(view.addr + t.dut.page, 'read')).toBe('SIGSEGV');
  });

  it('read() and write() at an offset mirror the mapping', async (ctx) => {
    ctx.skip(!t.profile.readWrite, 'the profile says read()/write() do not mirror the mapping');
    t.needsStableContent(ctx);
    t.mappings.later(() => zeroBuffer(t.dut, t.profile.device));
    const { addr } = await t.mappings.map(t.profile.device, { length: t.dut.page });
    // Each through a fresh open of the node, as `dd seek=`/`skip=` would: pwrite(2) and pread(2) in the agent.
    expect(await t.dut.guest.writeAt(t.profile.device, t.dut.offset + 7n, Buffer.from('through write()'))).toBe(15);
    expect((await t.dut.native.readBytes(addr + 7n, 15)).toString()).toBe('through write()');
    await t.dut.native.writeBytes(addr + 100n, Buffer.from('through the mapping'));
    expect(Buffer.from(await t.dut.guest.readAt(t.profile.device, t.dut.offset + 100n, 19)).toString()).toBe('through the mapping');
  });
});
