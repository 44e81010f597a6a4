/**
 * Conformance cases run against each of the reference driver's devices.
 * Each case names the row of shared/reference/mmap-semantics.md it checks and
 * the kernel source (Debian linux-source-6.1, 6.1.192) or driver code behind
 * it. Cases that write restore zeroes afterwards, so every case sees the
 * buffer as the driver had it right after load.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DeviceUnderTest, openDeviceUnderTest, pagePattern } from './device.js';
import { Mappings, zeroBuffer } from './mappings.js';
import { REFERENCE_DEVICES, type ReferenceDevice, WRITER_PATH } from './reference-devices.js';

let dut: DeviceUnderTest;
let mappings: Mappings;

beforeAll(async () => {
  dut = await openDeviceUnderTest();
  mappings = new Mappings(dut);
});
afterEach(() => mappings.release());
afterAll(() => dut.close());

describe.each(REFERENCE_DEVICES)('$path', (device: ReferenceDevice) => {
  /** The device itself when it accepts writable mappings, else a writable sibling over the same buffer. */
  const writer = device.writable ? device.path : WRITER_PATH;
  const restoreZeroes = (): void => mappings.later(() => zeroBuffer(dut, WRITER_PATH));

  describe('content', () => {
    // A2, bug #5 (stale data): the buffer is allocated zeroed; a map of the whole device shows only zeroes.
    it('a whole-device map reads zero', async () => {
      const { addr } = await mappings.map(device.path, { prot: dut.c.PROT_READ, openFlags: dut.c.O_RDONLY });
      const bytes = await dut.native.readBytes(addr, Number(dut.size));
      expect(bytes.length).toBe(Number(dut.size));
      expect(bytes.every((byte) => byte === 0)).toBe(true);
    });

    // E1: two MAP_SHARED mappings of one offset are the same memory, in one process or two.
    it('a write through one mapping is seen through a second mapping and by a second process', async () => {
      restoreZeroes();
      const first = await mappings.map(writer);
      const second = await mappings.map(device.path, { prot: dut.c.PROT_READ, openFlags: dut.c.O_RDONLY });
      expect(second.addr).not.toBe(first.addr);
      const message = Buffer.from(`written through ${writer}`);
      const at = dut.page + 123n;
      await dut.native.writeBytes(first.addr + at, message);
      expect(await dut.native.readBytes(second.addr + at, message.length)).toEqual(message);
      // readInChild forks a child that opens and maps the device on its own.
      expect(await dut.native.readInChild(device.path, dut.page, 123 + message.length)).toEqual(
        Buffer.concat([Buffer.alloc(123), message]),
      );
    });

    // A6/A7: vm_pgoff selects the page. A driver that ignores or truncates it shows page 0.
    it('a map at page offset k shows page k', async () => {
      restoreZeroes();
      const pages = dut.size / dut.page;
      const whole = await mappings.map(writer);
      for (let index = 0n; index < pages; index++) {
        await dut.native.writeBytes(whole.addr + index * dut.page, pagePattern(index, dut.page));
      }
      for (const k of [1n, pages / 2n, pages - 1n]) {
        const { addr } = await mappings.map(device.path, { length: dut.page, offset: k * dut.page, prot: dut.c.PROT_READ });
        expect(await dut.native.readBytes(addr, Number(dut.page))).toEqual(pagePattern(k, dut.page));
      }
    });
  });

  describe('bounds (A6: the driver refuses what lies past its buffer)', () => {
    const expectEinval = async (length: bigint, offset: bigint): Promise<void> => {
      const { native, c } = dut;
      const fd = await mappings.open(device.path, c.O_RDONLY);
      await expect(native.mmap(0n, length, c.PROT_READ, c.MAP_SHARED, fd, offset)).rejects.toMatchObject({
        code: 'EINVAL',
        errno: -22,
        syscall: 'mmap',
      });
    };

    // kmod: mmapkit_check_range(), len > size - off.
    it('refuses a length one page past the buffer', () => expectEinval(dut.size + dut.page, 0n));

    // mmapkit_check_range(): pgoff >= size >> PAGE_SHIFT.
    it('refuses an offset at the end of the buffer', () => expectEinval(dut.page, dut.size));

    it('refuses an offset past the end of the buffer', () => expectEinval(dut.page, dut.size + 16n * dut.page));

    // The straddle: the first page is inside, the second is not.
    it('refuses two pages at offset size - page', () => expectEinval(2n * dut.page, dut.size - dut.page));

    // A7, bug #2: pgoff 2^32 truncates to page 0 in 32 bits and must not alias it.
    it('refuses offset 2^44 (pgoff 2^32, page 0 when truncated to 32 bits)', () => expectEinval(dut.page, 1n << 44n));

    // A1: mm/mmap.c:1281-1282 refuses a zero length before any driver code runs.
    it('refuses a zero length (kernel, mm/mmap.c:1281)', () => expectEinval(0n, 0n));
  });

  describe('lifetime', () => {
    // D1: the VMA holds its own reference to the file (get_file, mm/mmap.c:2779); ->release
    // runs only at the last munmap (fput in remove_vma, mm/mmap.c:137-142).
    it('the mapping stays valid after close(fd)', async () => {
      restoreZeroes();
      const { fd, addr } = await mappings.map(device.path, { prot: dut.c.PROT_READ, openFlags: dut.c.O_RDONLY });
      await dut.native.close(fd);
      const message = Buffer.from('still mapped');
      const written = await mappings.map(writer);
      await dut.native.writeBytes(written.addr, message);
      expect(await dut.native.readBytes(addr, message.length)).toEqual(message);
    });
  });

  describe('access modes and protections', () => {
    // B1: read access is always required, mm/mmap.c:1391-1392.
    it('refuses any mapping of an O_WRONLY fd with EACCES (kernel)', async () => {
      const { native, c } = dut;
      const fd = await mappings.open(device.path, c.O_WRONLY);
      await expect(native.mmap(0n, dut.page, c.PROT_READ, c.MAP_SHARED, fd, 0n)).rejects.toMatchObject({
        code: 'EACCES',
      });
    });

    // B7: the driver keeps vma->vm_page_prot, so a PROT_READ mapping has read-only PTEs.
    it('a write to a PROT_READ mapping raises SIGSEGV and leaves the buffer unchanged', async () => {
      const { addr } = await mappings.map(device.path, { prot: dut.c.PROT_READ });
      expect(await dut.native.probe(addr, 'read')).toBe('ok');
      expect(await dut.native.probe(addr, 'write')).toBe('SIGSEGV');
      expect(await dut.native.readInChild(device.path, 0n, 1)).toEqual(Buffer.alloc(1));
    });

    if (device.writable) {
      // B4: O_RDWR + MAP_SHARED + PROT_READ, then mprotect(+W): change_protection makes the PTEs writable.
      it('mprotect adds PROT_WRITE to a shared mapping of an O_RDWR fd', async () => {
        restoreZeroes();
        const { addr } = await mappings.map(device.path, { prot: dut.c.PROT_READ, length: dut.page });
        await dut.native.mprotect(addr, dut.page, dut.c.PROT_READ | dut.c.PROT_WRITE);
        await dut.native.writeBytes(addr, Buffer.from([0x5a]));
        expect(await dut.native.readInChild(device.path, 0n, 1)).toEqual(Buffer.from([0x5a]));
      });
    } else {
      // B4, driver override: the ro device refuses VM_WRITE and clears VM_MAYWRITE.
      it('refuses a shared writable mapping with EACCES', async () => {
        const fd = await mappings.open(device.path, dut.c.O_RDWR);
        const prot = dut.c.PROT_READ | dut.c.PROT_WRITE;
        await expect(dut.native.mmap(0n, dut.page, prot, dut.c.MAP_SHARED, fd, 0n)).rejects.toMatchObject({
          code: 'EACCES',
        });
      });

      // mm/mprotect.c:766-769: without VM_MAYWRITE, mprotect cannot add PROT_WRITE.
      it('refuses mprotect(PROT_WRITE) on a read-only mapping with EACCES', async () => {
        const { addr } = await mappings.map(device.path, { prot: dut.c.PROT_READ, length: dut.page });
        await expect(dut.native.mprotect(addr, dut.page, dut.c.PROT_READ | dut.c.PROT_WRITE)).rejects.toMatchObject({
          code: 'EACCES',
        });
      });
    }

    const privateRule = device.private;
    if (privateRule === 'cow-if-contiguous') {
      // C1/C2: one whole-VMA remap_pfn_range makes a COW mapping: writes go to a private
      // copy (wp_page_copy, mm/memory.c:2880-2960) and the buffer stays unchanged.
      it('MAP_PRIVATE works as copy-on-write over a contiguous buffer, and is refused otherwise', async () => {
        const fd = await mappings.open(device.path);
        const { contiguous } = await dut.native.deviceInfo(fd);
        const prot = dut.c.PROT_READ | dut.c.PROT_WRITE;
        const attempt = dut.native.mmap(0n, 2n * dut.page, prot, dut.c.MAP_PRIVATE, fd, 0n);
        if (!contiguous) {
          await expect(attempt).rejects.toMatchObject({ code: 'EINVAL' });
          return;
        }
        const addr = await attempt;
        mappings.later(() => dut.native.munmap(addr, 2n * dut.page));
        await dut.native.writeBytes(addr + dut.page, Buffer.from('private'));
        expect(await dut.native.readBytes(addr + dut.page, 7)).toEqual(Buffer.from('private'));
        expect(await dut.native.readInChild(device.path, dut.page, 7)).toEqual(Buffer.alloc(7));
      });
    } else {
      it(`refuses MAP_PRIVATE with PROT_WRITE with ${privateRule.refused}`, async () => {
        const fd = await mappings.open(device.path);
        const prot = dut.c.PROT_READ | dut.c.PROT_WRITE;
        await expect(dut.native.mmap(0n, dut.page, prot, dut.c.MAP_PRIVATE, fd, 0n)).rejects.toMatchObject({
          code: privateRule.refused,
        });
      });
    }
  });
});
