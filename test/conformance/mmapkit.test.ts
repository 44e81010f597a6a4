/**
 * The first conformance cases, against the reference driver's /dev/mmapkit.
 * Each names the row of shared/reference/mmap-semantics.md it checks and the
 * kernel source (Debian linux-source-6.1, 6.1.192) or driver line behind it.
 * Cases that write restore zeroes afterwards, so every case sees the
 * buffer as the driver left it at load time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DeviceUnderTest, openDeviceUnderTest, pagePattern } from './device.js';

let dut: DeviceUnderTest;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  dut = await openDeviceUnderTest();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(() => dut.close());

/** Opens the device and maps it; both are undone after the case. */
async function map(
  options: { length?: bigint; offset?: bigint; prot?: number; flags?: number; openFlags?: number; keepFd?: boolean } = {},
): Promise<{ fd: number; addr: bigint; length: bigint }> {
  const { native, c } = dut;
  const length = options.length ?? dut.size;
  const fd = await native.open(dut.path, options.openFlags ?? c.O_RDWR);
  cleanups.push(() => native.close(fd).catch(() => undefined));
  const addr = await native.mmap(
    0n,
    length,
    options.prot ?? c.PROT_READ | c.PROT_WRITE,
    options.flags ?? c.MAP_SHARED,
    fd,
    options.offset ?? 0n,
  );
  cleanups.push(() => native.munmap(addr, length));
  return { fd, addr, length };
}

/** Writes zeroes over the whole buffer through a mapping of its own. */
async function zeroDevice(): Promise<void> {
  const { addr } = await map();
  for (let offset = 0n; offset < dut.size; offset += dut.page) {
    await dut.native.writeBytes(addr + offset, Buffer.alloc(Number(dut.page)));
  }
}

describe('content', () => {
  // A2/E1, bug #5 (stale data): the driver allocates with vmalloc_user(), which zeroes
  // (mm/vmalloc.c:3443-3458); a mapping of the whole device must show only zeroes.
  it('a whole-device map reads zero right after load', async () => {
    const { addr } = await map({ prot: dut.c.PROT_READ });
    const bytes = await dut.native.readBytes(addr, Number(dut.size));
    expect(bytes.length).toBe(Number(dut.size));
    expect(bytes.every((byte) => byte === 0)).toBe(true);
  });

  // E1: two MAP_SHARED mappings of one offset are the same memory, in one process or two.
  it('a write through one mapping is seen through a second mapping and by a second process', async () => {
    cleanups.push(zeroDevice);
    const first = await map();
    const second = await map();
    expect(second.addr).not.toBe(first.addr);
    const message = Buffer.from('written through the first mapping');
    const at = dut.page + 123n;
    await dut.native.writeBytes(first.addr + at, message);
    expect(await dut.native.readBytes(second.addr + at, message.length)).toEqual(message);
    // readInChild forks a child that opens and maps the device on its own.
    expect(await dut.native.readInChild(dut.path, dut.page, 123 + message.length)).toEqual(
      Buffer.concat([Buffer.alloc(123), message]),
    );
  });

  // A6/A7: vm_pgoff selects the page. A driver that ignores it, or truncates it, shows page 0.
  it('a map at page offset k shows page k', async () => {
    cleanups.push(zeroDevice);
    const pages = dut.size / dut.page;
    const whole = await map();
    for (let index = 0n; index < pages; index++) {
      await dut.native.writeBytes(whole.addr + index * dut.page, pagePattern(index, dut.page));
    }
    for (const k of [1n, pages / 2n, pages - 1n]) {
      const { addr } = await map({ length: dut.page, offset: k * dut.page, prot: dut.c.PROT_READ });
      expect(await dut.native.readBytes(addr, Number(dut.page))).toEqual(pagePattern(k, dut.page));
    }
  });
});

describe('bounds (A6: the driver must refuse what lies past its buffer)', () => {
  const expectEinval = async (length: bigint, offset: bigint): Promise<void> => {
    const { native, c } = dut;
    const fd = await native.open(dut.path, c.O_RDWR);
    cleanups.push(() => native.close(fd));
    await expect(native.mmap(0n, length, c.PROT_READ, c.MAP_SHARED, fd, offset)).rejects.toMatchObject({
      code: 'EINVAL',
      errno: -22,
      syscall: 'mmap',
    });
  };

  // kmod/mmapkit.c mmapkit_check_range(): len > size - off.
  it('refuses a length one page past the buffer', () => expectEinval(dut.size + dut.page, 0n));

  // mmapkit_check_range(): pgoff >= size >> PAGE_SHIFT.
  it('refuses an offset at the end of the buffer', () => expectEinval(dut.page, dut.size));

  it('refuses an offset past the end of the buffer', () => expectEinval(dut.page, dut.size + 16n * dut.page));

  // A6 straddle: the first page is inside, the second is not.
  it('refuses two pages at offset size - page', () => expectEinval(2n * dut.page, dut.size - dut.page));

  // A7, bug #2: an offset that truncates to 0 in 32 bits (pgoff 2^32) must not alias page 0.
  it('refuses offset 2^44 (pgoff 2^32), which truncates to page 0 in 32 bits', () => expectEinval(dut.page, 1n << 44n));

  // A1: mm/mmap.c:1281-1282 rejects a zero length before any driver code runs.
  it('refuses a zero length (kernel, mm/mmap.c:1281)', () => expectEinval(0n, 0n));
});

describe('lifetime', () => {
  // D1: the VMA holds its own reference to the file (get_file, mm/mmap.c:2779), and
  // ->release only runs at the last munmap (fput in remove_vma, mm/mmap.c:137-142).
  it('the mapping stays valid after close(fd)', async () => {
    cleanups.push(zeroDevice);
    const { fd, addr } = await map();
    await dut.native.close(fd);
    const message = Buffer.from('still mapped');
    await dut.native.writeBytes(addr, message);
    expect(await dut.native.readBytes(addr, message.length)).toEqual(message);
    expect(await dut.native.readInChild(dut.path, 0n, message.length)).toEqual(message);
  });
});

describe('access modes', () => {
  // B1: read access is always required: mm/mmap.c:1391-1392.
  it('refuses any mapping of an O_WRONLY fd with EACCES (kernel)', async () => {
    const { native, c } = dut;
    const fd = await native.open(dut.path, c.O_WRONLY);
    cleanups.push(() => native.close(fd));
    await expect(native.mmap(0n, dut.page, c.PROT_READ, c.MAP_SHARED, fd, 0n)).rejects.toMatchObject({
      code: 'EACCES',
    });
  });

  // B7: the driver keeps vma->vm_page_prot, so a PROT_READ mapping has read-only PTEs.
  it('a write to a PROT_READ mapping raises SIGSEGV and leaves the device unchanged', async () => {
    const { addr } = await map({ prot: dut.c.PROT_READ });
    expect(await dut.native.probe(addr, 'read')).toBe('ok');
    expect(await dut.native.probe(addr, 'write')).toBe('SIGSEGV');
    expect(await dut.native.readInChild(dut.path, 0n, 1)).toEqual(Buffer.alloc(1));
  });

  // C1: this driver remaps page by page, which cannot back a COW mapping
  // (mm/memory.c:2512-2514), so it refuses is_cow_mapping() VMAs.
  it('refuses MAP_PRIVATE with EINVAL (the driver cannot support COW)', async () => {
    const { native, c } = dut;
    const fd = await native.open(dut.path, c.O_RDWR);
    cleanups.push(() => native.close(fd));
    await expect(
      native.mmap(0n, dut.page, c.PROT_READ | c.PROT_WRITE, c.MAP_PRIVATE, fd, 0n),
    ).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
