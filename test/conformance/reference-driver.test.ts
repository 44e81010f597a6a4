/**
 * The reference driver's own promises, beyond what any conformant driver
 * must do: exact fault and VMA accounting, the counters in debugfs, read()
 * and write() over the same buffer, the module's lifetime, and clean load
 * failures. Cases here may unload and reload the module; each leaves it
 * loaded as it found it.
 */
import { describe, expect, it } from 'vitest';
import { parseMaps, parseSmaps, vmaStartingAt } from '../../guest/procfs.js';
import { STAT_COUNTERS } from '../../native/index.js';
import { moduleObject } from '../../tools/paths.js';
import { attemptLoad, ensureModule, unloadModule } from '../../tools/qemu/guest-modules.js';
import { MODULE_NAME } from '../../tools/reference-driver.js';
import type { DeviceUnderTest } from './device.js';
import { type Mappings, referenceLeftovers, useReferenceDriver, zeroBuffer } from './mappings.js';

let dut: DeviceUnderTest;
let mappings: Mappings;
let modulePath: string;

useReferenceDriver((opened, made) => {
  dut = opened;
  mappings = made;
  modulePath = moduleObject(dut.kernel);
});

describe('fault accounting', () => {
  // The Fault(pfn) shape inserts one PTE per ->fault (vmf_insert_pfn); later touches of the
  // same page find the PTE and never reach the driver (handle_pte_fault, mm/memory.c).
  it('the fault device counts exactly one fault per first touch of a page', { tags: ['core'] }, async () => {
    const fd = await mappings.open('/dev/mmapkit-fault');
    await dut.native.resetStats(fd);
    const { addr } = await mappings.map('/dev/mmapkit-fault', { length: 4n * dut.page });
    for (const page of [0n, 2n, 0n, 2n]) expect(await dut.native.probe(addr + page * dut.page, 'read')).toBe('ok');
    expect(await dut.native.probe(addr + 3n * dut.page, 'write')).toBe('ok');
    const stats = await dut.native.deviceStats(fd);
    expect(stats.faultsServed).toBe(3n);
    expect(stats.faultsRefused).toBe(0n);
  });

  // remap_pfn_range fills every PTE inside ->mmap; touching the mapping takes no driver fault.
  it('the remap device takes no fault at all', async () => {
    const fd = await mappings.open('/dev/mmapkit-remap');
    await dut.native.resetStats(fd);
    const { addr } = await mappings.map('/dev/mmapkit-remap', { length: 4n * dut.page });
    for (let page = 0n; page < 4n; page++) await dut.native.probe(addr + page * dut.page, 'write');
    const stats = await dut.native.deviceStats(fd);
    expect(stats.mmapOk).toBe(1n);
    expect(stats.faultsServed).toBe(0n);
  });
});

describe.each(['/dev/mmapkit-remap', '/dev/mmapkit-fault', '/dev/mmapkit-ro'])('VMA accounting on %s', (path) => {
  // catalogue D3: the first mmap does not call ->open (the driver counts it in ->mmap); ->open runs
  // for the child's copy at fork (dup_mmap, 6.1), for the new half of a split (__split_vma) and
  // for the target of an mremap move (copy_vma; both 6.1 and 6.12);
  // ->close runs for every VMA removed.
  it('live VMAs return to zero after fork+exit, split, mremap move and munmap', async () => {
    const { native, c, page } = dut;
    const fd = await mappings.open(path, c.O_RDONLY);
    const live = async (): Promise<bigint> => (await native.deviceStats(fd)).liveVmas;
    expect(await live()).toBe(0n);

    const addr = await native.mmap(0n, 4n * page, c.PROT_READ, c.MAP_SHARED, fd, 0n);
    // munmap of a range already unmapped succeeds, so these undo whatever a failed assertion leaves.
    mappings.later(() => native.munmap(addr, 4n * page));
    expect(await live()).toBe(1n);

    expect(await native.forkAndExit()).toBe(0);
    expect(await live()).toBe(1n);

    // Unmapping page 1 of 4 leaves [0] and [2,3]: two VMAs.
    await native.munmap(addr + page, page);
    expect(await live()).toBe(2n);

    // Move [0] onto a placeholder elsewhere: the new VMA opens, the old one closes.
    const placeholder = await native.mmap(0n, page, c.PROT_NONE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, -1, 0n);
    mappings.later(() => native.munmap(placeholder, page));
    const moved = await native.mremap(addr, page, page, c.MREMAP_MAYMOVE | c.MREMAP_FIXED, placeholder);
    expect(moved).toBe(placeholder);
    expect(await live()).toBe(2n);

    await native.munmap(moved, page);
    await native.munmap(addr + 2n * page, 2n * page);
    expect(await live()).toBe(0n);
    const stats = await native.deviceStats(fd);
    expect(stats.vmaOpen).toBeGreaterThanOrEqual(3n);
  });
});

describe('the PFN ioctl', () => {
  it('reports linear PFNs for a contiguous buffer and refuses a page past the end', async () => {
    const fd = await mappings.open('/dev/mmapkit-remap');
    const { contiguous } = await dut.native.deviceInfo(fd);
    const first = await dut.native.pagePfn(fd, 0n);
    const last = await dut.native.pagePfn(fd, dut.size / dut.page - 1n);
    expect(first).toBeGreaterThan(0n);
    if (contiguous) expect(last - first).toBe(dut.size / dut.page - 1n);
    await expect(dut.native.pagePfn(fd, dut.size / dut.page)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  // catalogue H2 / C1: remap_pfn_range on a COW mapping rewrites vm_pgoff to the first PFN
  // (remap_pfn_range_internal, 6.1 and 6.12), so /proc/PID/maps shows the physical address as the offset.
  it('matches the offset /proc/PID/maps shows for a private remap mapping', async (ctx) => {
    const fd = await mappings.open('/dev/mmapkit-remap');
    const privateMap = mappings.map('/dev/mmapkit-remap', {
      prot: dut.c.PROT_READ,
      flags: dut.c.MAP_PRIVATE,
      length: 2n * dut.page,
      offset: dut.page,
    });
    if (!(await dut.native.deviceInfo(fd)).contiguous) {
      // A vmalloc buffer is remapped page by page, which cannot back a COW mapping.
      await expect(privateMap).rejects.toMatchObject({ code: 'EINVAL' });
      ctx.skip('the buffer is vmalloc: MAP_PRIVATE is refused (EINVAL), so there is no private mapping whose offset to read');
    }
    const { addr } = await privateMap;
    const vma = vmaStartingAt(parseMaps(await dut.guest.readFile('/proc/self/maps')), addr);
    expect(vma?.offset).toBe((await dut.native.pagePfn(fd, 1n)) * dut.page);
  });
});

describe('counters in debugfs', () => {
  const statsFile = '/sys/kernel/debug/mmapkit/mmapkit-fault/stats';
  /** The file's "name value" lines, in order. */
  const parse = (text: string): [string, bigint][] =>
    text.trim().split('\n').map((line) => {
      const [name, value] = line.trim().split(/\s+/);
      return [name ?? '', BigInt(value ?? '-1')];
    });

  // Both list MMAPKIT_STATS of kmod/uapi/mmapkit.h, which STAT_COUNTERS is read from.
  it('are readable as text, agree with the ioctl, and reset when written', async () => {
    const fd = await mappings.open('/dev/mmapkit-fault');
    await dut.native.resetStats(fd);
    const { addr } = await mappings.map('/dev/mmapkit-fault', { length: 2n * dut.page });
    await dut.native.probe(addr, 'read');
    const text = parse(await dut.guest.readFile(statsFile));
    const ioctl = await dut.native.deviceStats(fd);
    expect(text).toEqual(STAT_COUNTERS.map(({ field, name }) => [field, ioctl[name]]));
    expect(Object.keys(ioctl)).toEqual(STAT_COUNTERS.map(({ name }) => name));
    expect([ioctl.liveVmas, ioctl.mmapOk]).toEqual([1n, 1n]);
    await dut.guest.writeFile(statsFile, '0\n');
    const reset = parse(await dut.guest.readFile(statsFile));
    // A state, live_vmas, is not an event count: resetting leaves it.
    expect(reset).toEqual(STAT_COUNTERS.map(({ field, name, kind }) => [field, kind === 'state' ? ioctl[name] : 0n]));
  });
});

describe('read() and write() over the same buffer', () => {
  it('bytes written with write() appear in a mapping, and bytes written to a mapping come back from read()', async () => {
    mappings.later(() => zeroBuffer(dut, '/dev/mmapkit-remap'));
    const { addr } = await mappings.map('/dev/mmapkit-fault', { length: 4n * dut.page });
    expect(await dut.guest.writeAt('/dev/mmapkit-remap', 2n * dut.page + 7n, Buffer.from('through write()'))).toBe(15);
    expect((await dut.native.readBytes(addr + 2n * dut.page + 7n, 15)).toString()).toBe('through write()');
    await dut.native.writeBytes(addr + 3n * dut.page, Buffer.from('through the mapping'));
    expect(Buffer.from(await dut.guest.readAt('/dev/mmapkit-ro', 3n * dut.page, 19)).toString()).toBe('through the mapping');
  });

  it('the read-only device refuses write() (it has no write method: EINVAL from vfs_write)', async () => {
    await expect(dut.guest.writeAt('/dev/mmapkit-ro', 0n, Buffer.from('x'))).rejects.toMatchObject({ code: 'EINVAL', syscall: 'write' });
  });
});

describe('VmFlags in /proc/PID/smaps', () => {
  /** The VmFlags of the agent's VMA mapping `path` (the agent reads its own smaps). */
  const vmFlags = async (path: string): Promise<string[]> => {
    const vma = parseSmaps(await dut.guest.readFile('/proc/self/smaps')).find((entry) => entry.path === path);
    return [...(vma?.flags ?? [])];
  };

  // VM_DONTEXPAND (de): mremap cannot grow the mapping past the buffer that was checked (catalogue F1).
  // VM_DONTDUMP (dd): core dumps skip device memory (catalogue H4). VM_PFNMAP (pf): no struct page walk.
  it.each(['/dev/mmapkit-remap', '/dev/mmapkit-fault', '/dev/mmapkit-ro'])('%s has de, dd and pf', async (path) => {
    await mappings.map(path, { prot: dut.c.PROT_READ, length: 2n * dut.page });
    const flags = await vmFlags(path);
    expect(flags).toEqual(expect.arrayContaining(['de', 'dd', 'pf', 'sh']));
  });

  // catalogue B4: the ro device clears VM_MAYWRITE, so no mprotect can make it writable.
  it('the read-only device clears mw (VM_MAYWRITE)', async () => {
    await mappings.map('/dev/mmapkit-ro', { prot: dut.c.PROT_READ, length: dut.page });
    const flags = await vmFlags('/dev/mmapkit-ro');
    expect(flags).toContain('rd');
    expect(flags).not.toContain('mw');
  });
});

describe('module lifetime', () => {
  /** Loads the module again unless it still is (a failed case must not hide behind "File exists"). */
  const reload = (): Promise<void> => ensureModule(dut.guest, modulePath, `size=${dut.size}`);

  // catalogue D2: the open file pins the module (fops.owner, misc_open) until the last VMA
  // drops it (__fput; both 6.1 and 6.12); delete_module(O_NONBLOCK) then says
  // EWOULDBLOCK (try_stop_module, 6.1): what rmmod reports as the module in use.
  it('rmmod fails while a mapping outlives its fd, and succeeds after munmap', { tags: ['core'] }, async () => {
    const { native, c, page } = dut;
    const fd = await native.open('/dev/mmapkit-remap', c.O_RDONLY);
    const addr = await native.mmap(0n, page, c.PROT_READ, c.MAP_SHARED, fd, 0n);
    mappings.later(() => native.munmap(addr, page));
    await native.close(fd);
    await expect(native.deleteModule(MODULE_NAME, c.O_NONBLOCK)).rejects.toMatchObject({ code: 'EAGAIN' });
    await native.munmap(addr, page);
    try {
      await native.deleteModule(MODULE_NAME, c.O_NONBLOCK);
      expect((await dut.guest.readFile('/proc/modules')).split('\n').filter((line) => line.startsWith(`${MODULE_NAME} `))).toEqual([]);
    } finally {
      await reload();
    }
  });

  it.each([
    ['0', /size/],
    [String(300 * 1024 * 1024), /size/],
  ])('a load with size=%s fails cleanly and leaves nothing registered', async (size, message) => {
    await unloadModule(dut.guest, MODULE_NAME);
    try {
      const insmod = await attemptLoad(dut.guest, modulePath, `size=${size}`);
      expect([insmod.code, insmod.output]).toEqual([1, expect.stringMatching(/Invalid parameters \(EINVAL/)]);
      expect(insmod.kernelLog.filter((line) => line.includes('mmapkit')).at(-1)).toMatch(message);
      expect(await referenceLeftovers(dut)).toEqual([]);
    } finally {
      await reload();
    }
  });
});
