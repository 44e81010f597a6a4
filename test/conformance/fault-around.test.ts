/**
 * Fault-around in the reference driver's fault device (kmod/mmapkit-mmap.c,
 * mmapkit_fault_around()): with the fault_around module parameter at N, one
 * ->fault maps the faulting page and up to N - 1 pages after it, as DRM's TTM
 * prefaults TTM_BO_VM_NUM_PREFAULT = 16 (ttm_bo_vm_fault_reserved, 6.1).
 * The window is clipped to the VMA and to the buffer, pages already mapped are
 * left alone (insert_pfn, 6.1), and faults_served still
 * counts ->fault calls, one each.
 *
 * Whether a page has a PTE is told by touching it: a touch of a mapped page
 * never reaches the driver, a touch of an unmapped one is a ->fault that
 * faults_served counts. (/proc/self/pagemap cannot tell: the page walker
 * skips VM_PFNMAP vmas as holes, mm/pagewalk.c walk_page_test.) Touches are
 * ordered so that every "unmapped" touch comes after the "mapped" ones it
 * could otherwise hide.
 *
 * The parameter is writable at run time; every case here sets it and puts the
 * default (1) back, and the load case reloads the module with its defaults.
 */
import { describe, expect, it } from 'vitest';
import { moduleObject } from '../../tools/paths.js';
import { attemptLoad, attemptUnload, ensureModule, loadModule, unloadModule } from '../../tools/qemu/guest-modules.js';
import { MODULE_NAME, REFERENCE_DEVICE_PATHS } from '../../tools/reference-driver.js';
import { type DeviceUnderTest, pagePattern, writePagePatterns } from './device.js';
import { type Mappings, referenceLeftovers, useReferenceDriver, zeroBuffer } from './mappings.js';

const FAULT = REFERENCE_DEVICE_PATHS.fault;
const PARAM = `/sys/module/${MODULE_NAME}/parameters/fault_around`;

let dut: DeviceUnderTest;
let mappings: Mappings;
let pages: bigint;

useReferenceDriver(
  (opened, made) => {
    dut = opened;
    mappings = made;
    pages = dut.size / dut.page;
  },
  () => setFaultAround(1),
);

/** `echo value > PARAM`, written by the agent itself: no shell to spawn before and after every case. */
const setFaultAround = (value: number): Promise<void> => dut.guest.writeFile(PARAM, `${value}\n`);
/** `cat PARAM`, read by the agent itself. */
const faultAround = async (): Promise<string> => (await dut.guest.readFile(PARAM)).trim();

/** A fault-device fd with its counters reset, and its faults_served later. */
async function countedFaultDevice(): Promise<() => Promise<bigint>> {
  const fd = await mappings.open(FAULT);
  await dut.native.resetStats(fd);
  return async () => (await dut.native.deviceStats(fd)).faultsServed;
}

/**
 * Touches each page in turn and expects `mapped` ones to take no ->fault and
 * the others to take exactly one (which may map further pages: order matters).
 */
async function expectTouches(
  served: () => Promise<bigint>,
  addr: bigint,
  touches: [page: bigint, state: 'mapped' | 'unmapped'][],
  access: 'read' | 'write' = 'read',
): Promise<void> {
  for (const [page, state] of touches) {
    const before = await served();
    expect(await dut.native.probe(addr + page * dut.page, access)).toBe('ok');
    expect({ page, faults: (await served()) - before }).toEqual({ page, faults: state === 'mapped' ? 0n : 1n });
  }
}

const mapped = (...pages: bigint[]): [bigint, 'mapped'][] => pages.map((page) => [page, 'mapped']);

describe('fault_around = 16', () => {
  it('one fault maps the faulting page and the 15 after it, and counts one fault', { tags: ['core'] }, async () => {
    await setFaultAround(16);
    const served = await countedFaultDevice();
    const { addr } = await mappings.map(FAULT, { length: 40n * dut.page });
    await expectTouches(served, addr, [[0n, 'unmapped'], ...mapped(1n, 8n, 15n), [16n, 'unmapped'], ...mapped(17n, 31n)]);
    // A sequential first touch of all 40 pages took ceil(40 / 16) = 3 faults.
    for (let page = 32n; page < 40n; page++) expect(await dut.native.probe(addr + page * dut.page, 'write')).toBe('ok');
    expect(await served()).toBe(3n);
  });

  it('a fault in the middle maps forward only, from the faulting page', async () => {
    await setFaultAround(16);
    const served = await countedFaultDevice();
    const { addr } = await mappings.map(FAULT, { length: 32n * dut.page });
    await expectTouches(served, addr, [[10n, 'unmapped'], ...mapped(11n, 25n), [26n, 'unmapped'], [9n, 'unmapped']]);
  });

  it('never maps a page outside the VMA: the window stops at vm_end, the next VMA faults on its own', async () => {
    await setFaultAround(16);
    const served = await countedFaultDevice();
    const { addr } = await mappings.map(FAULT, { length: 32n * dut.page });
    // mprotect of pages 4..31 splits the mapping into two VMAs: [0, 4) and [4, 32).
    await dut.native.mprotect(addr + 4n * dut.page, 28n * dut.page, dut.c.PROT_READ);
    await expectTouches(served, addr, [[0n, 'unmapped'], ...mapped(1n, 3n), [4n, 'unmapped'], ...mapped(5n, 19n), [20n, 'unmapped']]);
    // The read-only VMA's pages were mapped with its own vm_page_prot.
    expect(await dut.native.probe(addr + 5n * dut.page, 'write')).toBe('SIGSEGV');
  });

  it('never maps a page past the end of the buffer, and maps each page at its own offset', async () => {
    await setFaultAround(16);
    mappings.later(() => zeroBuffer(dut, REFERENCE_DEVICE_PATHS.remap));
    const writer = await mappings.map(REFERENCE_DEVICE_PATHS.remap);
    await writePagePatterns(dut, writer.addr + (pages - 20n) * dut.page, pages - 20n, 20n);
    const served = await countedFaultDevice();
    // The last 4 pages of the buffer: a 16-page window would run 12 pages past its end.
    const { addr } = await mappings.map(FAULT, { length: 4n * dut.page, offset: dut.size - 4n * dut.page });
    await expectTouches(served, addr, [[0n, 'unmapped'], ...mapped(1n, 2n, 3n)]);
    for (let i = 0n; i < 4n; i++) {
      expect(await dut.native.readBytes(addr + i * dut.page, Number(dut.page))).toEqual(pagePattern(pages - 4n + i, dut.page));
    }
    // 20 pages from 16 before the end: the window of a fault at the first stops at the buffer's last page.
    const tail = await mappings.map(FAULT, { length: 20n * dut.page, offset: dut.size - 20n * dut.page });
    await expectTouches(served, tail.addr, [[0n, 'unmapped'], ...mapped(15n), [16n, 'unmapped'], ...mapped(19n)]);
    for (let i = 0n; i < 20n; i++) {
      expect(await dut.native.readBytes(tail.addr + i * dut.page, 8)).toEqual(pagePattern(pages - 20n + i, dut.page).subarray(0, 8));
    }
  });

  it('leaves pages already mapped alone, counts one fault per ->fault, and each page is its own buffer page', async () => {
    await setFaultAround(16);
    mappings.later(() => zeroBuffer(dut, REFERENCE_DEVICE_PATHS.remap));
    const writer = await mappings.map(REFERENCE_DEVICE_PATHS.remap, { length: 24n * dut.page });
    const served = await countedFaultDevice();
    const { addr } = await mappings.map(FAULT, { length: 24n * dut.page });
    // Page 5 first (maps 5..20), then page 0, whose window (0..15) overlaps it: 5..15 exist and are skipped.
    await expectTouches(served, addr, [[5n, 'unmapped'], [0n, 'unmapped'], ...mapped(4n, 15n, 20n), [21n, 'unmapped']], 'write');
    expect(await served()).toBe(3n);
    // A write through each fault-device page lands in that page of the buffer, as the remap device shows.
    for (let i = 0n; i < 24n; i++) await dut.native.writeBytes(addr + i * dut.page + 8n, pagePattern(i, dut.page).subarray(0, 8));
    for (let i = 0n; i < 24n; i++) {
      expect(await dut.native.readBytes(writer.addr + i * dut.page + 8n, 8)).toEqual(pagePattern(i, dut.page).subarray(0, 8));
    }
    expect(await served()).toBe(3n);
  });
});

describe('the fault_around parameter', () => {
  const modulePath = (): string => moduleObject(dut.kernel);

  it('takes 1..512 at run time and refuses anything else, keeping its value', async () => {
    expect(await faultAround()).toBe('1');
    await setFaultAround(512);
    expect(await faultAround()).toBe('512');
    for (const bad of ['0', '513', '-1', 'x']) {
      // The write(2) of `echo bad > PARAM` fails with the set op's error (param_attr_store, 6.1 and 6.12):
      // EINVAL from kstrtouint or from mmapkit_fault_around_set's range check.
      await expect(dut.guest.writeFile(PARAM, `${bad}\n`), bad).rejects.toMatchObject({ code: 'EINVAL' });
    }
    expect(await faultAround()).toBe('512');
  });

  it('with fault_around=1 (the default) a fault maps one page', async () => {
    const served = await countedFaultDevice();
    const { addr } = await mappings.map(FAULT, { length: 4n * dut.page });
    await expectTouches(served, addr, [[1n, 'unmapped'], [2n, 'unmapped'], [0n, 'unmapped'], ...mapped(1n)]);
  });

  it('a load with fault_around=0 fails cleanly; one with fault_around=16 applies it from the first fault', async () => {
    await unloadModule(dut.guest, MODULE_NAME);
    try {
      const refused = await attemptLoad(dut.guest, modulePath(), `size=${dut.size} fault_around=0`);
      expect([refused.code, refused.output]).toEqual([1, expect.stringMatching(/Invalid parameters \(EINVAL/)]);
      expect(await referenceLeftovers(dut)).toEqual([]);
      await loadModule(dut.guest, modulePath(), `size=${dut.size} fault_around=16`);
      expect(await faultAround()).toBe('16');
      const served = await countedFaultDevice();
      const { addr } = await mappings.map(FAULT, { length: 20n * dut.page });
      await expectTouches(served, addr, [[0n, 'unmapped'], ...mapped(15n), [16n, 'unmapped']]);
      await mappings.release();
    } finally {
      // Back to the defaults: every mapping and fd is gone, so the module can go.
      await attemptUnload(dut.guest, MODULE_NAME);
      await ensureModule(dut.guest, modulePath(), `size=${dut.size}`);
    }
    expect(await faultAround()).toBe('1');
  });
});
