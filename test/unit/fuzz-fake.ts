/**
 * A fake of the system `mmapkit fuzz` drives (guest/fuzz-system.ts): a
 * remap_pfn_range driver over a buffer, as the reference remap device
 * behaves (VM_PFNMAP | VM_IO | VM_DONTEXPAND, copy-on-write MAP_PRIVATE or
 * every MAP_PRIVATE refused, a read-only variant), simulated page by page
 * in JavaScript, with classic bugs of docs/bug-taxonomy.md to switch on. It
 * lets the unit tests prove the model passes a correct driver and catches
 * each bug, without a guest.
 */
import type { RaceFaultsOptions, RaceWorker, WrongPage } from '../../native/api.js';
import type { FuzzConstants, FuzzSystem } from '../../guest/fuzz-system.js';
import type { FuzzTarget } from '../../guest/fuzz-types.js';

/**
 * nobounds: taxonomy #1, offset checked but not offset + length; dontexpand: taxonomy #3, mremap grows it;
 * cowleak: a private write lands in the device (taxonomy #10's visible half); stale: taxonomy #5, left-over bytes;
 * racyfault: taxonomy #19, racing faults map each other's page; noowner: taxonomy #9, a mapping does not pin the module.
 */
export type FakeBug = 'nobounds' | 'dontexpand' | 'cowleak' | 'stale' | 'racyfault' | 'noowner';

const PAGE = 4096;
/** What the memory past the buffer holds, as the fixtures' guard pages do (test/fixtures/kmod/README.md). */
const GUARD = 0x5a;

export const FAKE_CONSTANTS: FuzzConstants = {
  PROT_NONE: 0, PROT_READ: 1, PROT_WRITE: 2, MAP_SHARED: 1, MAP_PRIVATE: 2, O_RDONLY: 0, O_RDWR: 2, MREMAP_MAYMOVE: 1,
  MADV_NORMAL: 0, MADV_DONTNEED: 4, MADV_DONTFORK: 10, MADV_DOFORK: 11, MADV_WILLNEED: 3, O_NONBLOCK: 0o4000,
};

interface Pte {
  /** Page of the buffer (past its end: the guard). */
  devPage: number;
  read: boolean;
  write: boolean;
  mayWrite: boolean;
  shared: boolean;
  dontfork: boolean;
  copy?: Uint8Array;
}

const fail = (code: string): never => {
  throw Object.assign(new Error(code), { code });
};

export function fakeSystem(
  target: FuzzTarget,
  bug?: FakeBug,
): FuzzSystem & { readonly liveFds: number; readonly livePages: number; readonly loads: number; readonly races: readonly RaceFaultsOptions[] } {
  const c = FAKE_CONSTANTS;
  const pages = target.size / PAGE;
  const guardPages = 32;
  const memory = new Uint8Array(target.size + guardPages * PAGE).fill(GUARD, target.size);
  if (bug === 'stale') memory.fill(0xa5, 0, target.size);
  const fds = new Map<number, { writable: boolean }>();
  const ptes = new Map<number, Pte>();
  let nextFd = 3;
  /** The module is in: the device can be opened. */
  let loaded = true;
  let loads = 0;
  const races: RaceFaultsOptions[] = [];
  // Never reused, with a hole after each mapping: addresses stay unambiguous.
  let nextVpn = 0x10000;
  const vpnOf = (addr: bigint): number => Number(addr / BigInt(PAGE));
  const spanOf = (addr: bigint, length: bigint): number[] => {
    if (addr % BigInt(PAGE) !== 0n) fail('EINVAL');
    const first = vpnOf(addr);
    return Array.from({ length: Math.ceil(Number(length) / PAGE) }, (_, i) => first + i);
  };
  const pageBytes = (pte: Pte): Uint8Array => pte.copy ?? memory.subarray(pte.devPage * PAGE, (pte.devPage + 1) * PAGE);
  /** Copies between a span of memory and `buffer`, page by page, faulting as the MMU would. */
  const access = (addr: bigint, buffer: Uint8Array, write: boolean, ptesOf: (vpn: number) => Pte | undefined): void => {
    for (let done = 0; done < buffer.length; ) {
      const here = addr + BigInt(done);
      const pte = ptesOf(vpnOf(here));
      if (pte === undefined || !pte.read || (write && !pte.write)) fail('SIGSEGV');
      if (pte!.devPage < 0 || pte!.devPage >= pages + guardPages) fail('SIGBUS');
      if (write && !pte!.shared && pte!.copy === undefined && bug !== 'cowleak') pte!.copy = Uint8Array.from(pageBytes(pte!));
      const at = Number(here % BigInt(PAGE));
      const count = Math.min(PAGE - at, buffer.length - done);
      const bytes = pageBytes(pte!).subarray(at, at + count);
      if (write) bytes.set(buffer.subarray(done, done + count));
      else buffer.set(bytes, done);
      done += count;
    }
  };
  return {
    page: PAGE,
    c,
    get liveFds() {
      return fds.size;
    },
    get livePages() {
      return ptes.size;
    },
    /** Times the module was loaded again after an unload. */
    get loads() {
      return loads;
    },
    /** Each raceFaults call's options. */
    get races() {
      return races;
    },
    open(flags) {
      if (!loaded) fail('ENOENT');
      const fd = nextFd++;
      fds.set(fd, { writable: flags === c.O_RDWR });
      return fd;
    },
    close(fd) {
      if (!fds.delete(fd)) fail('EBADF');
    },
    mmap(length, prot, flags, fd, offset) {
      const file = fds.get(fd) ?? fail('EBADF');
      const shared = flags === c.MAP_SHARED;
      const write = (prot & c.PROT_WRITE) !== 0;
      if (length === 0n || offset % BigInt(PAGE) !== 0n) fail('EINVAL');
      const count = Math.ceil(Number(length) / PAGE);
      if (shared && write && !file.writable) fail('EACCES');
      const first = Number((offset - BigInt(target.offset)) / BigInt(PAGE));
      const pastEnd = bug === 'nobounds' ? first >= pages : first + count > pages;
      if (first < 0 || pastEnd) fail('EINVAL');
      if (!target.writable && write) fail('EACCES');
      if (!shared && target.private === 'rejected') fail('EINVAL');
      const vpn = nextVpn;
      nextVpn += count + 1;
      const mayWrite = target.writable && (file.writable || !shared);
      for (let i = 0; i < count; i++) {
        ptes.set(vpn + i, { devPage: first + i, read: prot !== c.PROT_NONE, write, mayWrite, shared, dontfork: false });
      }
      return BigInt(vpn) * BigInt(PAGE);
    },
    munmap(addr, length) {
      for (const vpn of spanOf(addr, length)) ptes.delete(vpn);
    },
    mprotect(addr, length, prot) {
      const span = spanOf(addr, length).map((vpn) => ptes.get(vpn) ?? fail('ENOMEM'));
      const write = (prot & c.PROT_WRITE) !== 0;
      if (write && span.some((pte) => !pte.mayWrite)) fail('EACCES');
      for (const pte of span) Object.assign(pte, { read: prot !== c.PROT_NONE, write });
    },
    mremap(addr, oldSize, newSize) {
      const span = spanOf(addr, oldSize).map((vpn) => ptes.get(vpn) ?? fail('EFAULT'));
      const first = vpnOf(addr);
      const count = Math.ceil(Number(newSize) / PAGE);
      if (count < span.length) {
        for (let i = count; i < span.length; i++) ptes.delete(first + i);
        return addr;
      }
      // VM_PFNMAP | VM_DONTEXPAND: vma_to_resize refuses to grow it. The bug: a driver that lets it grow in place.
      if (bug !== 'dontexpand') fail('EFAULT');
      if (ptes.has(first + count - 1)) fail('ENOMEM');
      const last = span.at(-1)!;
      for (let i = span.length; i < count; i++) ptes.set(first + i, { ...last, copy: undefined, devPage: last.devPage + i - span.length + 1 });
      return addr;
    },
    madvise(addr, length, advice) {
      const span = spanOf(addr, length).map((vpn) => ptes.get(vpn) ?? fail('ENOMEM'));
      // VM_PFNMAP refuses MADV_DONTNEED, VM_IO refuses MADV_DOFORK.
      if (advice === c.MADV_DONTNEED || advice === c.MADV_DOFORK) fail('EINVAL');
      if (advice === c.MADV_DONTFORK) for (const pte of span) pte.dontfork = true;
    },
    readBytes(addr, length) {
      const buffer = new Uint8Array(length);
      access(addr, buffer, false, (vpn) => ptes.get(vpn));
      return buffer;
    },
    writeBytes(addr, data) {
      access(addr, data, true, (vpn) => ptes.get(vpn));
    },
    pread(fd, length, position) {
      if (!fds.has(fd)) fail('EBADF');
      const at = position - target.offset;
      return Uint8Array.from(memory.subarray(at, Math.min(at + length, target.size)));
    },
    pwrite(fd, data, position) {
      if (fds.get(fd)?.writable !== true) fail('EBADF');
      const at = position - target.offset;
      const count = Math.max(0, Math.min(data.length, target.size - at));
      if (count > 0) memory.set(data.subarray(0, count), at);
      return count;
    },
    readInForkedChild(addr, length) {
      const buffer = new Uint8Array(length);
      access(addr, buffer, false, (vpn) => {
        const pte = ptes.get(vpn);
        return pte?.dontfork === true ? undefined : pte;
      });
      return buffer;
    },
    forkAndExit: () => 0,
    raceFaults(fd, offset, length, options) {
      if (!fds.has(fd)) fail('EBADF');
      races.push(options);
      const first = Number((offset - BigInt(target.offset)) / BigInt(PAGE));
      const count = Number(length) / PAGE;
      const view = new DataView(memory.buffer);
      const workers: RaceWorker[] = Array.from({ length: options.workers }, (_, w) => {
        const wrong: WrongPage[] = [];
        let touched = 0;
        for (let round = 0; round < options.rounds; round++) {
          for (let p = w; p < count; p += options.workers) {
            // The bug: in the first round, worker 1's first fault maps the page worker 0 is serving.
            const shown = bug === 'racyfault' && round === 0 && w === 1 && p === 1 ? first : first + p;
            const seen = view.getBigUint64(shown * PAGE, true);
            touched++;
            if (seen !== BigInt(options.firstIndex + p)) wrong.push({ round, page: options.firstIndex + p, seen, wrongWords: PAGE / 8 });
          }
        }
        return { cpu: w, ranOn: [w], iterations: options.rounds, touched, overlapped: touched, wrongCount: wrong.length, wrong, outcomes: [] };
      });
      return { rounds: options.rounds, failed: false, workers };
    },
    deleteModule() {
      if (!loaded) fail('ENOENT');
      // An open file pins the module; with the bug, the file a mapping holds does not.
      if (fds.size > 0 || (ptes.size > 0 && bug !== 'noowner')) fail('EAGAIN');
      loaded = false;
    },
    loadModule() {
      if (loaded) fail('EEXIST');
      loaded = true;
      loads++;
      memory.fill(0, 0, target.size);
    },
  };
}
