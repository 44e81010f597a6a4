/**
 * Lifecycle oracles (catalogue D5; the hooks behind it: catalogue D1-D3,
 * E2, F3, F4, F7): after each event that closes a VMA, copies one, splits one or drops
 * an fd, the one mapping left alive, with no other fd or mapping of the
 * device in any process, must still show every page's content, including
 * pages nobody touched before the event. Each case:
 *
 * 1. maps the whole region read-only from a fresh fd, and puts the
 *    page-index pattern over it through a second mapping of the same open
 *    file (of the writer, for a device that cannot be written), which it
 *    then unmaps, so that no ->release runs before the event (a driver may
 *    clear its memory once nobody has the device open);
 * 2. reads the first half of the pages through the mapping (faulting them
 *    in on an on-demand device; the second half stays untouched), closes
 *    the fd, and checks that the guest holds nothing else of the device:
 *    the harness keeps no fd open (test/conformance/device.ts opens nothing
 *    for the run; the initial-content read happens in a child that exits);
 * 3. causes the event, checks again who holds the device, and compares the
 *    whole range with the pattern twice: once touching the pages never
 *    faulted, once more after every page was.
 *
 * Taxonomy #7 (->close without ->open) loses the content at a fork, a split
 * or a move; taxonomy #8 (memory freed while mapped) at ->flush or at the
 * ->release of another file. test/fixtures/kmod: fixture-bug-unbalanced,
 * fixture-bug-release.
 */
import { type TestContext, expect, it } from 'vitest';
import type { Holder } from '../../../guest/protocol.js';
import type { NativeCall } from '../../../tools/qemu/guest-client.js';
import { moduleName } from '../../../tools/qemu/guest-modules.js';
import { pagePatternsDiffer, writePagePatterns } from '../device.js';
import { describeProfiles, MOVE_VETOES, ranBranch } from '../profile-suite.js';
import { settle, vmaAt } from './vma.js';

/** Pages of the region mapped by one piece of the surviving mapping: region pages [first, first + count) at `addr`. */
interface Piece {
  addr: bigint;
  first: bigint;
  count: bigint;
}

describeProfiles('lifecycle: the mapping that survives', (t) => {
  const page = (): bigint => t.dut.page;
  const pages = (): bigint => t.dut.size / t.dut.page;
  const whole = (addr: bigint): Piece => ({ addr, first: 0n, count: pages() });
  const readOf = (piece: Piece): NativeCall => ({ fn: 'readBytes', args: [piece.addr, Number(piece.count * page())] });

  /** The device's files: its node, and the writer's, which maps the same memory. */
  const deviceFiles = (): string[] => [...new Set([t.profile.device, ...(t.writer === undefined ? [] : [t.writer])])];

  /**
   * What holds the device in the whole guest, besides the pieces listed as the agent's: every
   * fd, every mapping outside them, every other process. Named for the failure message.
   */
  const strayHolders = async (pieces: readonly Piece[], fds: readonly number[] = []): Promise<string[]> => {
    const held = await t.dut.guest.holders(deviceFiles());
    const ours = (holder: Holder): boolean => {
      if (holder.pid !== t.dut.agentPid) return false;
      if (holder.kind === 'fd') return fds.includes(Number(holder.name));
      const [start, end] = holder.name.split('-').map((hex) => BigInt(`0x${hex}`));
      return pieces.some((piece) => start! >= piece.addr && end! <= piece.addr + piece.count * page());
    };
    return held.filter((holder) => !ours(holder)).map((holder) => `${holder.comm}[${holder.pid}] ${holder.kind} ${holder.name}`);
  };

  /**
   * Step 1 and the first half of step 2: the read-only mapping of the whole region, the pattern
   * over it, the first half read back. Returns the mapping and its still open fd.
   */
  const prepare = async (ctx: TestContext): Promise<{ fd: number; addr: bigint }> => {
    ctx.skip(pages() < 4n, 'the device has fewer than 4 pages: no head, middle and tail to split off');
    const writer = t.needsWriter(ctx);
    const { native, c } = t.dut;
    const length = t.dut.size;
    // The same open file for both mappings when the device itself can be written: unmapping the
    // second is then a ->close, never a ->release.
    const own = writer === t.profile.device;
    const fd = await t.mappings.open(t.profile.device, own ? c.O_RDWR : c.O_RDONLY);
    const { addr } = await t.mappings.map(t.profile.device, { fd, prot: c.PROT_READ, length });
    const written = await t.mappings.map(writer, own ? { fd, length } : { length });
    await writePagePatterns(t.dut, written.addr, 0n, pages());
    await t.mappings.unmap(written.addr, length);
    if (!own) await native.close(written.fd);
    const half = pages() / 2n;
    const before = await pagePatternsDiffer(t.dut, readOf({ addr, first: 0n, count: half }), 0n, half);
    expect(before, 'the pattern read back through the mapping before the event').toBeUndefined();
    return { fd, addr };
  };

  /** The rest of step 2: the fd closed, and nothing but the mapping holds the device. */
  const closeAndAlone = async (addr: bigint): Promise<void> => {
    // Every fd the case holds of the device: `fd`, and a setup object's own fds too (Mappings.closeAll).
    await t.mappings.closeAll(t.profile.device);
    expect(await strayHolders([whole(addr)]), 'fds and mappings of the device in the guest besides the one mapping, before the event').toEqual([]);
  };

  /** Step 3: only `pieces` hold the device, and they show the pattern, twice over. */
  const survived = async (event: string, pieces: readonly Piece[]): Promise<void> => {
    expect(await strayHolders(pieces), `fds and mappings of the device in the guest besides the surviving mapping, after ${event}`).toEqual([]);
    for (const when of [`after ${event}`, `after ${event}, read again once every page was touched`]) {
      for (const piece of pieces) {
        expect(await pagePatternsDiffer(t.dut, readOf(piece), piece.first, piece.count), when).toBeUndefined();
      }
    }
  };

  // catalogue D5, D3, E2: dup_mmap copies the VMA (vm_area_dup, get_file) and calls ->open for the
  // copy; the child's exit removes it (remove_vma: ->close, then fput). kernel/fork.c and mm/mmap.c,
  // 6.1; 6.12: vm_area_dup and remove_vma (dup_mmap is not visible in its BTF). A driver counting
  // VMAs without ->open reaches zero here while the parent's mapping lives (taxonomy #7).
  it('a fork whose child exits leaves the parent\'s mapping its whole content', { tags: ['core'] }, async (ctx) => {
    const { addr } = await prepare(ctx);
    await closeAndAlone(addr);
    expect(await t.dut.native.forkAndExit()).toBe(0);
    await survived('a fork and the child\'s exit', [whole(addr)]);
  });

  // catalogue D5, D3, E2: the other order: the parent's VMA is removed (remove_vma: ->close) and the
  // child's copy is the one left; the child reads it (readInChildAfterUnmap, no fd of its own) only
  // after the parent's munmap returned. The parent holds nothing more: no fd, no mapping.
  it('after a fork, the child\'s mapping keeps its whole content when the parent unmaps', async (ctx) => {
    const { addr } = await prepare(ctx);
    ctx.skip((await vmaAt(t, addr)).flags.has('dc'), 'the driver sets VM_DONTCOPY: a child inherits no mapping (catalogue E2)');
    await closeAndAlone(addr);
    let differs: string | undefined;
    try {
      // Two passes: the first faults in the half the parent never touched, the second reads all again.
      differs = await pagePatternsDiffer(t.dut, { fn: 'readInChildAfterUnmap', args: [addr, t.dut.size, 2] }, 0n, pages(), 2);
    } finally {
      t.mappings.released(addr, t.dut.size);
    }
    expect(differs, 'read in the child after the parent unmapped').toBeUndefined();
    // The child has exited: nothing of the device is left anywhere.
    expect(await strayHolders([]), 'fds and mappings of the device in the guest after the child exited').toEqual([]);
  });

  // catalogue D5, D3, F7: a partial munmap splits the VMA (__split_vma: ->open for the new piece, or a
  // may_split veto) and removes the part unmapped (remove_vma: ->close). mm/mmap.c, 6.1; 6.12 in
  // mm/vma.c, same names (__split_vma, remove_vma).
  it.for([
    { part: 'head', index: (): bigint => 0n },
    { part: 'middle', index: (): bigint => pages() / 2n },
    { part: 'tail', index: (): bigint => pages() - 1n },
  ])('a munmap of the $part page leaves the rest of the mapping its content', async ({ part, index }, ctx) => {
    const { addr } = await prepare(ctx);
    await closeAndAlone(addr);
    const gone = index();
    const unmapped = await settle(t.dut.native.munmap(addr + gone * page(), page()));
    if ('code' in unmapped) {
      expect(MOVE_VETOES, 'a driver vetoes a split with what its may_split returns').toContain(unmapped.code);
      await survived(`a refused munmap of the ${part} (${unmapped.code})`, [whole(addr)]);
      await ranBranch(ctx, `refused with ${unmapped.code} (vm_ops->may_split); the mapping stayed whole`);
      return;
    }
    t.mappings.released(addr + gone * page(), page());
    const pieces: Piece[] = [
      { addr, first: 0n, count: gone },
      { addr: addr + (gone + 1n) * page(), first: gone + 1n, count: pages() - gone - 1n },
    ].filter((piece) => piece.count > 0n);
    await survived(`a munmap of the ${part} page`, pieces);
    await ranBranch(ctx, 'split');
  });

  // catalogue D5, D3, F4: a move copies the VMA (copy_vma: ->open for the new one, or the driver's
  // ->mremap veto in move_vma) and unmaps the old one (->close). mm/mremap.c and mm/mmap.c, 6.1;
  // 6.12: the same names.
  it('an mremap move leaves the mapping its whole content at the new address', async (ctx) => {
    const { addr } = await prepare(ctx);
    await closeAndAlone(addr);
    const { native, c } = t.dut;
    const length = t.dut.size;
    const target = await native.mmap(0n, length, c.PROT_NONE, c.MAP_PRIVATE | c.MAP_ANONYMOUS, -1, 0n);
    // The placeholder's undo step unmaps whatever is there at the end: the moved mapping, if it moved.
    t.mappings.later(() => native.munmap(target, length).catch(() => undefined));
    const moved = await settle(native.mremap(addr, length, length, c.MREMAP_MAYMOVE | c.MREMAP_FIXED, target));
    if ('code' in moved) {
      expect(MOVE_VETOES, 'a driver vetoes a move with what its vm_ops return').toContain(moved.code);
      await survived(`a refused mremap move (${moved.code})`, [whole(addr)]);
      await ranBranch(ctx, `refused with ${moved.code} (the driver's vm_ops); the mapping stayed`);
      return;
    }
    t.mappings.released(addr, length);
    expect(moved.value).toBe(target);
    await survived('an mremap move', [whole(target)]);
    await ranBranch(ctx, 'moved');
  });

  // catalogue D5, D3, F3: shrinking splits off the tail (__split_vma: ->open, or a may_split veto)
  // and unmaps it (->close). The mremap syscall, 6.1; 6.12: __x64_sys_mremap.
  it('an mremap shrink by one page leaves the rest of the mapping its content', async (ctx) => {
    const { addr } = await prepare(ctx);
    await closeAndAlone(addr);
    const length = t.dut.size;
    const shrunk = await settle(t.dut.native.mremap(addr, length, length - page(), 0));
    if ('code' in shrunk) {
      expect(MOVE_VETOES, 'a driver vetoes a split with what its may_split returns').toContain(shrunk.code);
      await survived(`a refused mremap shrink (${shrunk.code})`, [whole(addr)]);
      await ranBranch(ctx, `refused with ${shrunk.code} (vm_ops->may_split); the mapping stayed whole`);
      return;
    }
    t.mappings.released(addr + length - page(), page());
    expect(shrunk.value).toBe(addr);
    await survived('an mremap shrink', [{ addr, first: 0n, count: pages() - 1n }]);
    await ranBranch(ctx, 'shrunk');
  });

  // catalogue D5, D3: mprotect of the middle page splits the VMA twice (mprotect_fixup, __split_vma:
  // ->open for each new piece, or a may_split veto); nothing is removed. Restoring PROT_READ may merge
  // the pieces back only for vm_ops without ->close (is_mergeable_vma). mm/mprotect.c and mm/mmap.c,
  // 6.1; 6.12: mprotect_fixup, __split_vma.
  it('an mprotect split leaves every piece its content', async (ctx) => {
    const { addr } = await prepare(ctx);
    await closeAndAlone(addr);
    const { native, c } = t.dut;
    const middle = pages() / 2n;
    const split = await settle(native.mprotect(addr + middle * page(), page(), c.PROT_NONE));
    if ('code' in split) {
      expect(MOVE_VETOES, 'a driver vetoes a split with what its may_split returns').toContain(split.code);
      await survived(`a refused mprotect split (${split.code})`, [whole(addr)]);
      await ranBranch(ctx, `refused with ${split.code} (vm_ops->may_split); the mapping stayed whole`);
      return;
    }
    const sides: Piece[] = [
      { addr, first: 0n, count: middle },
      { addr: addr + (middle + 1n) * page(), first: middle + 1n, count: pages() - middle - 1n },
    ];
    // The PROT_NONE page is still mapped (a piece of the device's), only not readable.
    const protectedPage: Piece = { addr: addr + middle * page(), first: middle, count: 1n };
    expect(await strayHolders([...sides, protectedPage]), 'fds and mappings of the device besides the three pieces').toEqual([]);
    for (const piece of sides) {
      expect(await pagePatternsDiffer(t.dut, readOf(piece), piece.first, piece.count), 'after an mprotect split, either side').toBeUndefined();
    }
    await native.mprotect(addr + middle * page(), page(), c.PROT_READ);
    await survived('an mprotect split and PROT_READ again on the middle page', [whole(addr)]);
    await ranBranch(ctx, 'split');
  });

  // catalogue D5, D1: close() calls ->flush every time (filp_close, 6.1; filp_flush, 6.12) and drops
  // the file; ->release runs only for a file nothing holds any more (__fput, 6.1 and 6.12). The
  // mapping's file is held by its VMA, so the ->release that runs here is the second fd's: a driver
  // that takes any ->release (or ->flush) for the end of all use loses the mapping's memory
  // (taxonomy #8).
  it('the last close() of every fd leaves the mapping its whole content', { tags: ['core'] }, async (ctx) => {
    const { fd, addr } = await prepare(ctx);
    const { c } = t.dut;
    // A second open file of the device, nothing mapped through it, as a program's control fd.
    const second = await t.mappings.open(t.profile.device, c.O_RDONLY);
    const objectFds = t.dut.object?.fds ?? [];
    expect(await strayHolders([whole(addr)], [fd, second, ...objectFds]), 'fds and mappings of the device besides the mapping and its fds, before the close').toEqual([]);
    // The mapping's fd, then the second, then (for a setup profile) the object's own fds: the order the case opened them.
    await t.mappings.closeAll(t.profile.device);
    await survived('the close() of the mapping\'s fd and then of the last fd', [whole(addr)]);
  });

  // catalogue D5, D2: delete_module(O_NONBLOCK) while the mapping pins the module (the VMA's file
  // holds fops.owner) fails with EWOULDBLOCK and runs no exit code: try_stop_module, 6.1;
  // __x64_sys_delete_module, 6.12 (try_stop_module not visible). The memory must not be touched.
  it('a refused module unload leaves the mapping its whole content', async (ctx) => {
    ctx.skip(t.profile.module === undefined, 'the profile names no module to unload');
    const { addr } = await prepare(ctx);
    await closeAndAlone(addr);
    await expect(t.dut.native.deleteModule(moduleName(t.profile.module!), t.dut.c.O_NONBLOCK)).rejects.toMatchObject({ code: 'EAGAIN' });
    await survived('a refused delete_module', [whole(addr)]);
  });
});
