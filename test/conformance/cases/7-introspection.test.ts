/**
 * Introspection: /proc/PID/maps, smaps and pagemap of a device mapping
 * (catalogue H1-H3, B3).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 * The agent holds the mappings and reads its own /proc/PID files (vma.ts).
 */
import { expect, it } from 'vitest';
import { decodePagemap } from '../../../native/index.js';
import { describeProfiles, ranBranch } from '../profile-suite.js';
import { isPfnmap, vmaAt } from './vma.js';

describeProfiles('introspection: maps, smaps, pagemap (H)', (t) => {
  const page = (): bigint => t.dut.page;
  const flagsOf = (flags: ReadonlySet<string>): string => [...flags].join(' ');

  // catalogue H2: perms are r/w/x from vm_flags and 's' from VM_MAYSHARE (show_vma_header_prefix, 6.1 and 6.12).
  it('a shared writable mapping shows rw-s', async (ctx) => {
    ctx.skip(!t.profile.writable, 'the profile allows no writable mapping of the device');
    const { addr, length } = await t.mappings.map(t.profile.device, { length: page() });
    const vma = await vmaAt(t, addr);
    expect(vma.perms, vma.line).toBe('rw-s');
    expect(vma.end - vma.start).toBe(length);
  });

  // catalogue H2: for MAP_SHARED the offset column is vm_pgoff << PAGE_SHIFT, the requested offset;
  // dev and inode are those of the device node (show_map_vma, 6.1 and 6.12: i_sb->s_dev, i_ino). A
  // character device keeps vm_pgoff, unless its offset is a cookie that names an object rather than a
  // place in one (interiorOffsets false): vb2_mmap sets vm_pgoff to 0 once the cookie found its buffer
  // (6.1 and 6.12, "vm_pgoff is treated in V4L2 API as a 'cookie'"). A regular file (sysfs PCI
  // resourceN) may show another offset too. Either is reported, not failed.
  it('the maps line shows the requested offset, the device node and its path', { tags: ['core'] }, async (ctx) => {
    // Page k from the middle, or the region's start for a driver that maps only from there (profile interiorOffsets).
    const k = t.profile.interiorOffsets ? t.dut.size / page() / 2n : 0n;
    const offset = t.dut.offset + k * page();
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), offset, prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, addr);
    // The file mapped: the node, or for a setup's object its fd's file, which for a dma-buf is the
    // buffer's own anonymous file (dma_buf_getfile: "/dmabuf:" on the dma_buf_fs, 6.12), not the node.
    const object = t.dut.object;
    const file = object !== undefined ? `/proc/${t.dut.agentPid}/fd/${object.fd}` : t.profile.device;
    const { dev, ino: inode, type } = await t.dut.guest.stat(file);
    if (vma.offset !== offset && type === 'regular file') {
      // catalogue H2, taxonomy #18 (informational): sysfs PCI resourceN adds the BAR start to vm_pgoff
      // (pci_mmap_resource_range, 6.1 and 6.12).
      await ctx.annotate(`informational: the maps offset is 0x${vma.offset.toString(16)}, not the requested 0x${offset.toString(16)} (catalogue H2, taxonomy #18)`);
    } else if (vma.offset !== offset && !t.profile.interiorOffsets) {
      await ctx.annotate(`informational: the maps offset is 0x${vma.offset.toString(16)}, not the requested 0x${offset.toString(16)}: the driver rewrote vm_pgoff once the offset, a cookie, named its object (catalogue H2)`);
    } else {
      expect(vma.offset, vma.line).toBe(offset);
    }
    // st_dev as glibc encodes it (makedev); /proc/PID/maps prints major:minor in hex.
    const major = (dev >> 8) & 0xfff;
    const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
    expect(vma.dev, vma.line).toBe(`${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`);
    expect(vma.inode, vma.line).toBe(inode);
    expect(vma.line.endsWith(` ${t.profile.device}`) || vma.line.includes(' /'), vma.line).toBe(true);
  });

  // catalogue H1: VmFlags print vm_flags in bit order (show_smap_vma_flags, 6.1). A MAP_SHARED mapping of an
  // O_RDWR fd keeps VM_SHARED and VM_MAYSHARE; PROT_READ gives no "wr"; a writable device keeps
  // VM_MAYWRITE ("mw"). Device vmas are never locked ("lo") nor accountable ("ac").
  it('smaps VmFlags match the protection and the profile', { tags: ['core'] }, async () => {
    const { c } = t.dut;
    const ro = await t.mappings.map(t.profile.device, { length: page(), prot: c.PROT_READ });
    const vma = await vmaAt(t, ro.addr);
    for (const flag of ['rd', 'sh', 'mr', 'ms']) expect(vma.flags.has(flag), `${flag} in ${flagsOf(vma.flags)}`).toBe(true);
    for (const flag of ['wr', 'lo', 'ac']) expect(vma.flags.has(flag), `${flag} in ${flagsOf(vma.flags)}`).toBe(false);
    if (t.profile.writable) {
      expect(vma.flags.has('mw'), `mw in ${flagsOf(vma.flags)}`).toBe(true);
      const rw = await t.mappings.map(t.profile.device, { length: page() });
      const writable = await vmaAt(t, rw.addr);
      for (const flag of ['rd', 'wr', 'sh', 'mr', 'mw', 'ms']) expect(writable.flags.has(flag), `${flag} in ${flagsOf(writable.flags)}`).toBe(true);
    }
  });

  // catalogue B3: an O_RDONLY fd loses VM_SHARED and VM_MAYWRITE (do_mmap) but keeps
  // VM_MAYSHARE, so maps shows r--s (show_vma_header_prefix; both 6.1 and 6.12) and VmFlags have no sh/mw.
  it('a read-only MAP_SHARED of an O_RDONLY fd shows r--s and no sh/mw in VmFlags', async (ctx) => {
    t.needsAccessMode(ctx);
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, addr);
    expect(vma.perms, vma.line).toBe('r--s');
    for (const flag of ['rd', 'mr', 'ms']) expect(vma.flags.has(flag), `${flag} in ${flagsOf(vma.flags)}`).toBe(true);
    for (const flag of ['wr', 'sh', 'mw']) expect(vma.flags.has(flag), `${flag} in ${flagsOf(vma.flags)}`).toBe(false);
  });

  // catalogue H2 / C1: a MAP_PRIVATE mapping shows 'p' and has neither VM_SHARED nor VM_MAYSHARE. Its
  // offset column is not checked: a COW remap rewrites vm_pgoff to the pfn (remap_pfn_range_internal, 6.1 and 6.12).
  it('a MAP_PRIVATE mapping shows r--p and no sh/ms in VmFlags', async (ctx) => {
    ctx.skip(t.profile.private === 'rejected', 'the profile says MAP_PRIVATE is refused');
    const { c } = t.dut;
    const addr = await t.needsPrivate(ctx, c.PROT_READ, page(), c.O_RDONLY);
    const vma = await vmaAt(t, addr);
    expect(vma.perms, vma.line).toBe('r--p');
    for (const flag of ['sh', 'ms']) expect(vma.flags.has(flag), `${flag} in ${flagsOf(vma.flags)}`).toBe(false);
  });

  // catalogue H1: smaps skips VM_PFNMAP vmas in its walk (walk_page_test, 6.1 and 6.12): Rss 0 kB even when
  // every PTE is there. Page-backed vmas count faulted pages, never more than the mapping.
  it('smaps Rss: 0 kB over VM_PFNMAP, otherwise no more than the mapping; Locked 0 kB', async () => {
    const length = t.dut.size < 4n * page() ? t.dut.size : 4n * page();
    const { addr } = await t.mappings.map(t.profile.device, { length, prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    await t.dut.native.readBytes(addr, Number(length));
    const vma = await vmaAt(t, addr);
    if (isPfnmap(vma)) expect(vma.rss, vma.line).toBe(0);
    else expect(vma.rss).toBeLessThanOrEqual(Number(length / 1024n));
    expect(vma.locked).toBe(0);
  });

  // catalogue H3: pagemap reports every VM_PFNMAP page as not present with PFN 0 (pagemap_pte_hole,
  // 6.1 and 6.12). A page-backed vma shows a touched page present; two
  // mappings of the same offset never show different PFNs.
  it('pagemap: VM_PFNMAP pages are not exposed; otherwise a touched page is present, one PFN per offset', async (ctx) => {
    const { c } = t.dut;
    const first = await t.mappings.map(t.profile.device, { length: page(), prot: c.PROT_READ, openFlags: c.O_RDONLY });
    const second = await t.mappings.map(t.profile.device, { length: page(), prot: c.PROT_READ, openFlags: c.O_RDONLY });
    await t.dut.native.readBytes(first.addr, 8);
    await t.dut.native.readBytes(second.addr, 8);
    const vma = await vmaAt(t, first.addr);
    const a = decodePagemap(await t.dut.native.pagemap(first.addr));
    const b = decodePagemap(await t.dut.native.pagemap(second.addr));
    if (isPfnmap(vma)) {
      for (const entry of [a, b]) {
        expect(entry.present).toBe(false);
        expect(entry.pfn).toBe(0n);
      }
      await ranBranch(ctx, 'VM_PFNMAP: not present, PFN 0');
    } else {
      expect(a.present && b.present).toBe(true);
      // Without CAP_SYS_ADMIN pagemap shows PFN 0 (pagemap_read, 6.1 and 6.12): nothing to compare.
      if (a.pfn !== 0n && b.pfn !== 0n) {
        expect(a.pfn).toBe(b.pfn);
        await ranBranch(ctx, 'page-backed: present, one PFN');
      } else {
        await ranBranch(ctx, 'page-backed: present; PFNs hidden, not compared');
      }
    }
  });
});
