// Typed loader for the mmapkit native addon (native/src/*.cc).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';

export type Access = 'read' | 'write';
export type ProbeResult = 'ok' | 'SIGBUS' | 'SIGSEGV';

export type ConstantName =
  | 'PROT_NONE'
  | 'PROT_READ'
  | 'PROT_WRITE'
  | 'PROT_EXEC'
  | 'MAP_SHARED'
  | 'MAP_PRIVATE'
  | 'MAP_SHARED_VALIDATE'
  | 'MAP_FIXED'
  | 'MAP_FIXED_NOREPLACE'
  | 'MAP_ANONYMOUS'
  | 'MAP_POPULATE'
  | 'MAP_NORESERVE'
  | 'O_RDONLY'
  | 'O_WRONLY'
  | 'O_RDWR'
  | 'O_NONBLOCK'
  | 'O_SYNC'
  | 'MREMAP_MAYMOVE'
  | 'MREMAP_FIXED'
  | 'MREMAP_DONTUNMAP'
  | 'MADV_NORMAL'
  | 'MADV_DONTNEED'
  | 'MADV_DONTFORK'
  | 'MADV_DOFORK'
  | 'MADV_WILLNEED'
  | 'MS_ASYNC'
  | 'MS_SYNC'
  | 'MS_INVALIDATE';

/** How a device's ->mmap populates page tables (enum mmapkit_kind in kmod/uapi/mmapkit.h). */
export type DeviceKind = 'remap' | 'fault' | 'ro';

/** MMAPKIT_IOC_INFO: struct mmapkit_info. */
export interface DeviceInfo {
  /** Bytes mappable, a multiple of pageSize. */
  bufferSize: bigint;
  pageSize: number;
  kind: DeviceKind;
  /** True if the buffer is physically contiguous. */
  contiguous: boolean;
}

/** The fields of struct mmapkit_stats, camelCased. */
export type StatName =
  | 'mmapOk'
  | 'mmapEinvalRange'
  | 'mmapEinvalCow'
  | 'mmapEaccesWrite'
  | 'mmapOtherError'
  | 'liveVmas'
  | 'vmaOpen'
  | 'vmaClose'
  | 'faultsServed'
  | 'faultsRefused';

/**
 * MMAPKIT_IOC_STATS: one device's counters since load or the last
 * resetStats (liveVmas, a state rather than a count, is never reset).
 */
export type DeviceStats = Readonly<Record<StatName, bigint>>;

/** A /proc/self/pagemap entry, decoded by decodePagemap. */
export interface PagemapEntry {
  /** Bit 63: the page is in RAM. */
  present: boolean;
  /** Bit 62: the page is in swap. */
  swapped: boolean;
  /** Bit 61: a file page or shared anonymous page. */
  file: boolean;
  /** Bit 56: mapped by this process only. */
  exclusive: boolean;
  /** Bit 55: written since the soft-dirty bits were last cleared. */
  softDirty: boolean;
  /** Bits 0-54 of a present page; 0n when not present, or when the reader lacks CAP_SYS_ADMIN. */
  pfn: bigint;
}

/**
 * What a timed benchmark loop measured (the bench* functions). `ns` is
 * CLOCK_MONOTONIC time inside the loop only; the fault counts are
 * getrusage(RUSAGE_THREAD) deltas over the same span; `checksum` is the
 * wrapping sum of every 8-byte word loaded, equal for any two ways of
 * reading the same bytes.
 */
export interface BenchTiming {
  ns: number;
  minorFaults: number;
  majorFaults: number;
  checksum: bigint;
}

/** benchMapTouch: the mapping is left in place at `addr`; munmap it. */
export interface BenchMapping {
  addr: bigint;
  /** The mmap() call alone. */
  mmapNs: number;
  /** The first touch of every page (one 8-byte access per page). */
  touchNs: number;
  /** Faults over mmap and touch, getrusage(RUSAGE_THREAD). */
  minorFaults: number;
  majorFaults: number;
}

/**
 * What the addon throws. A failing syscall gives Node's fs error shape
 * (`code` 'EINVAL', `errno` -22, `syscall` 'mmap', plus `path` for calls
 * that take one); a fault during a guarded access gives `code` 'SIGBUS' or
 * 'SIGSEGV' and the faulting `address`.
 */
export interface NativeError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  path?: string;
  address?: bigint;
}

/**
 * All calls are synchronous. Addresses, mapping lengths and offsets are
 * BigInts in [0, 2^64) handed to the kernel unchanged; anything else is a
 * TypeError.
 */
export interface NativeAddon {
  /** Returns the fd; O_CLOEXEC is always added. */
  open(path: string, flags: number): number;
  close(fd: number): void;
  mmap(addr: bigint, length: bigint, prot: number, flags: number, fd: number, offset: bigint): bigint;
  munmap(addr: bigint, length: bigint): void;
  mprotect(addr: bigint, length: bigint, prot: number): void;
  /** Copies out of a mapping; a fault throws a NativeError instead of killing the process. */
  readBytes(addr: bigint, length: number): Buffer;
  /** Copies into a mapping; a fault throws a NativeError instead of killing the process. */
  writeBytes(addr: bigint, data: Uint8Array): void;
  /** Touches one byte ('write' writes back the byte it read) and reports whether it faulted. */
  probe(addr: bigint, access: Access): ProbeResult;
  /**
   * Reads `length` bytes at `offset` of `path` through a MAP_SHARED
   * PROT_READ mapping made by a forked child process. Throws the child's
   * open/mmap error, or code 'SIGBUS'/'SIGSEGV' if it died of a fault, or
   * 'ETIMEDOUT' if it did not finish within 10 s.
   */
  readInChild(path: string, offset: bigint, length: number): Buffer;
  /**
   * Reads `length` bytes at `addr` in a forked child, through the copy of
   * this process's mapping that the child inherits. Throws code
   * 'SIGBUS'/'SIGSEGV' if the child died of a fault, 'ETIMEDOUT' if it did
   * not finish within 10 s.
   */
  readInForkedChild(addr: bigint, length: number): Buffer;
  /**
   * fork()s a child that _exit(0)s at once, waits for it and returns its
   * exit status: every VMA is copied and torn down once, as a driver's
   * vm_ops open/close accounting must survive. A child killed by a signal
   * throws code 'SIGBUS' etc.
   */
  forkAndExit(): number;
  /** `newAddr` (default 0n) is passed to the kernel whatever the flags. */
  mremap(oldAddr: bigint, oldSize: bigint, newSize: bigint, flags: number, newAddr?: bigint): bigint;
  madvise(addr: bigint, length: bigint, advice: number): void;
  mlock(addr: bigint, length: bigint): void;
  munlock(addr: bigint, length: bigint): void;
  msync(addr: bigint, length: bigint, flags: number): void;
  /** One byte per page (bit 0: resident), for `length` rounded up to whole pages. */
  mincore(addr: bigint, length: bigint): Buffer;
  pageSize(): number;
  /**
   * This process's raw /proc/self/pagemap entry for the page holding
   * `addr`; see decodePagemap. An address beyond the user address space
   * throws EINVAL (syscall 'pread').
   */
  pagemap(addr: bigint): bigint;
  /** ru_minflt of getrusage(RUSAGE_SELF): faults served without I/O, all threads. */
  minorFaults(): bigint;
  /** ru_majflt of getrusage(RUSAGE_SELF): faults that needed I/O. */
  majorFaults(): bigint;
  /** MMAPKIT_IOC_INFO; an unknown kind throws code 'EPROTO'. Failing ioctls throw with syscall 'ioctl'. */
  deviceInfo(fd: number): DeviceInfo;
  /** MMAPKIT_IOC_STATS. */
  deviceStats(fd: number): DeviceStats;
  /** MMAPKIT_IOC_RESET_STATS. */
  resetStats(fd: number): void;
  /** MMAPKIT_IOC_PFN: the PFN backing `page`, an index into the device's buffer. */
  pagePfn(fd: number, page: bigint): bigint;
  /**
   * The raw delete_module(2) syscall (flags: O_NONBLOCK, O_TRUNC), so a
   * test sees the kernel's errno rather than rmmod's message.
   */
  deleteModule(name: string, flags: number): void;
  /**
   * Benchmark (`mmapkit bench`): mmap()s `length` bytes of `target`, then
   * touches every page once, both timed: 'read' loads the page's first
   * 8-byte word, 'write' stores 0 there (a store with no load before it, so
   * the first fault is a write fault; the word's content is lost). `target` is 'anon' (MAP_PRIVATE anonymous memory, madvised
   * MADV_NOHUGEPAGE so that it has 4 KiB pages as PFN mappings do) or a
   * path, opened O_RDWR and mapped MAP_SHARED at offset 0. A fault while
   * touching unmaps and throws code 'SIGBUS'/'SIGSEGV'.
   */
  benchMapTouch(target: string, length: number, access: Access): BenchMapping;
  /** Writes the benchmark pattern (word i depends on seed and i) over `length` bytes at `addr`. */
  benchFill(addr: bigint, length: number, seed: number): void;
  /** Sums every 8-byte word of `length` bytes at `addr` (8-byte loads), `passes` times. */
  benchSequentialRead(addr: bigint, length: number, passes: number): BenchTiming;
  /** `count` 8-byte loads at random aligned offsets below `length` (xorshift64* from `seed`). */
  benchRandomRead(addr: bigint, length: number, count: number, seed: number): BenchTiming;
  /**
   * lseek(fd, 0) then read() of `length` bytes in `bufferSize` chunks, summing each
   * chunk's words as it arrives, `passes` times. Both sizes are multiples of 8.
   */
  benchReadSyscall(fd: number, length: number, bufferSize: number, passes: number): BenchTiming;
  /** The offsets of benchRandomRead, each read with its own 8-byte pread(). */
  benchPread(fd: number, length: number, count: number, seed: number): BenchTiming;
  constants: Readonly<Record<ConstantName, number>>;
}

type FunctionName = Exclude<keyof NativeAddon, 'constants'>;

// A Record, so the compiler rejects this list if it falls out of step with NativeAddon.
const FUNCTIONS: Readonly<Record<FunctionName, true>> = {
  open: true,
  close: true,
  mmap: true,
  munmap: true,
  mprotect: true,
  readBytes: true,
  writeBytes: true,
  probe: true,
  readInChild: true,
  readInForkedChild: true,
  forkAndExit: true,
  mremap: true,
  madvise: true,
  mlock: true,
  munlock: true,
  msync: true,
  mincore: true,
  pageSize: true,
  pagemap: true,
  minorFaults: true,
  majorFaults: true,
  deviceInfo: true,
  deviceStats: true,
  resetStats: true,
  pagePfn: true,
  deleteModule: true,
  benchMapTouch: true,
  benchFill: true,
  benchSequentialRead: true,
  benchRandomRead: true,
  benchReadSyscall: true,
  benchPread: true,
};

const ADDON_URL = new URL('./build/Release/mmapkit_native.node', import.meta.url);

let loaded: NativeAddon | undefined;

/**
 * Loads the addon once and returns the same instance on every call. Code
 * bundled elsewhere (the guest agent) passes the addon's path, since its own
 * location no longer tells where native/build is.
 */
export function loadNative(file: string = fileURLToPath(ADDON_URL)): NativeAddon {
  loaded ??= requireAddon(file);
  return loaded;
}

/** True for any Error carrying a string `code`, the addon's included. */
export function isNativeError(e: unknown): e is NativeError {
  // types.isNativeError, unlike instanceof, also holds for errors from another realm.
  return types.isNativeError(e) && 'code' in e && typeof e.code === 'string';
}

// Bit positions of a pagemap entry, per Documentation/admin-guide/mm/pagemap.rst.
const PAGEMAP_PFN_MASK = (1n << 55n) - 1n;
const PAGEMAP_SOFT_DIRTY = 55n;
const PAGEMAP_EXCLUSIVE = 56n;
const PAGEMAP_FILE = 61n;
const PAGEMAP_SWAPPED = 62n;
const PAGEMAP_PRESENT = 63n;

/**
 * Decodes a raw entry from NativeAddon.pagemap. Plain TypeScript, so it
 * also decodes entries that came back from the guest. An entry outside
 * [0, 2^64) is a TypeError, as it would be for the addon.
 */
export function decodePagemap(entry: bigint): PagemapEntry {
  if (BigInt.asUintN(64, entry) !== entry) throw new TypeError('entry must be a BigInt in [0, 2^64)');
  const bit = (n: bigint): boolean => ((entry >> n) & 1n) === 1n;
  const present = bit(PAGEMAP_PRESENT);
  return {
    present,
    swapped: bit(PAGEMAP_SWAPPED),
    file: bit(PAGEMAP_FILE),
    exclusive: bit(PAGEMAP_EXCLUSIVE),
    softDirty: bit(PAGEMAP_SOFT_DIRTY),
    // For a swapped page the same bits hold the swap type and offset instead.
    pfn: present ? entry & PAGEMAP_PFN_MASK : 0n,
  };
}

function requireAddon(file: string): NativeAddon {
  if (!existsSync(file)) {
    throw new Error(`native addon not built: run \`make build\` (missing ${file})`);
  }
  const addon: unknown = createRequire(import.meta.url)(file);
  if (!isNativeAddon(addon)) {
    throw new Error(`native addon at ${file} does not export the NativeAddon API: rebuild it with \`make build\``);
  }
  return addon;
}

function isNativeAddon(value: unknown): value is NativeAddon {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const hasFunctions = Object.keys(FUNCTIONS).every((name) => typeof record[name] === 'function');
  return hasFunctions && typeof record['constants'] === 'object' && record['constants'] !== null;
}
