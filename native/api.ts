/**
 * The addon's API, written once: FUNCTIONS below names every function with
 * its type, and NativeAddon, the guest agent's list of what it serves and
 * the host's RemoteNative (tools/qemu/guest-client.ts) all derive from it.
 * The C++ side lists the same names in native/src/bindings.h; a unit test
 * (test/unit/native.test.ts) fails when the two lists differ. Constant and
 * counter names come from the C headers themselves (generated/, written by
 * `mmapkit build`).
 */
import { CONSTANT_NAMES, STAT_COUNTERS } from './generated/header-names.js';

export { CONSTANT_NAMES, STAT_COUNTERS };

export type Access = 'read' | 'write';
export type ProbeResult = 'ok' | 'SIGBUS' | 'SIGSEGV';

/** A key of the addon's `constants`: MMAPKIT_NATIVE_CONSTANTS in native/src/bindings.h. */
export type ConstantName = (typeof CONSTANT_NAMES)[number];

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

/** The counters of MMAPKIT_STATS (kmod/uapi/mmapkit.h), camelCased. */
export type StatName = (typeof STAT_COUNTERS)[number]['name'];

/**
 * MMAPKIT_IOC_STATS: one device's counters since load or the last
 * resetStats (the state counters, liveVmas, are never reset).
 */
export type DeviceStats = Readonly<Record<StatName, bigint>>;

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

/** What ioctl returns: its result and the argument's bytes after the call. */
export interface IoctlAnswer {
  result: number;
  arg: Buffer;
}

/** A row of FUNCTIONS: the function's type, carried by the type alone (the value is empty). */
interface Signature<F extends (...args: never[]) => unknown> {
  readonly type?: F;
}

const signature = <F extends (...args: never[]) => unknown>(): Signature<F> => ({});

/**
 * Every function of the addon, with its type. All calls are synchronous.
 * Addresses, mapping lengths and offsets are BigInts in [0, 2^64) handed to
 * the kernel unchanged; anything else is a TypeError. A failing call throws
 * a NativeError (native/index.ts).
 */
export const FUNCTIONS = {
  /** Returns the fd; O_CLOEXEC is always added. */
  open: signature<(path: string, flags: number) => number>(),
  close: signature<(fd: number) => void>(),
  mmap: signature<(addr: bigint, length: bigint, prot: number, flags: number, fd: number, offset: bigint) => bigint>(),
  munmap: signature<(addr: bigint, length: bigint) => void>(),
  mprotect: signature<(addr: bigint, length: bigint, prot: number) => void>(),
  /** Copies out of a mapping; a fault throws a NativeError instead of killing the process. */
  readBytes: signature<(addr: bigint, length: number) => Buffer>(),
  /** Copies into a mapping; a fault throws a NativeError instead of killing the process. */
  writeBytes: signature<(addr: bigint, data: Uint8Array) => void>(),
  /** Touches one byte ('write' writes back the byte it read) and reports whether it faulted. */
  probe: signature<(addr: bigint, access: Access) => ProbeResult>(),
  /**
   * Reads `length` bytes at `offset` of `path` through a MAP_SHARED
   * PROT_READ mapping made by a forked child process. Throws the child's
   * open/mmap error, or code 'SIGBUS'/'SIGSEGV' if it died of a fault, or
   * 'ETIMEDOUT' if it did not finish within 10 s.
   */
  readInChild: signature<(path: string, offset: bigint, length: number) => Buffer>(),
  /**
   * Reads `length` bytes at `addr` in a forked child, through the copy of
   * this process's mapping that the child inherits. Throws code
   * 'SIGBUS'/'SIGSEGV' if the child died of a fault, 'ETIMEDOUT' if it did
   * not finish within 10 s.
   */
  readInForkedChild: signature<(addr: bigint, length: number) => Buffer>(),
  /**
   * fork()s a child that _exit(0)s at once, waits for it and returns its
   * exit status: every VMA is copied and torn down once, as a driver's
   * vm_ops open/close accounting must survive. A child killed by a signal
   * throws code 'SIGBUS' etc.
   */
  forkAndExit: signature<() => number>(),
  /** `newAddr` (default 0n) is passed to the kernel whatever the flags. */
  mremap: signature<(oldAddr: bigint, oldSize: bigint, newSize: bigint, flags: number, newAddr?: bigint) => bigint>(),
  madvise: signature<(addr: bigint, length: bigint, advice: number) => void>(),
  mlock: signature<(addr: bigint, length: bigint) => void>(),
  munlock: signature<(addr: bigint, length: bigint) => void>(),
  msync: signature<(addr: bigint, length: bigint, flags: number) => void>(),
  /** One byte per page (bit 0: resident), for `length` rounded up to whole pages. */
  mincore: signature<(addr: bigint, length: bigint) => Buffer>(),
  pageSize: signature<() => number>(),
  /**
   * This process's raw /proc/self/pagemap entry for the page holding
   * `addr`; see decodePagemap. An address beyond the user address space
   * throws EINVAL (syscall 'pread').
   */
  pagemap: signature<(addr: bigint) => bigint>(),
  /** ru_minflt of getrusage(RUSAGE_SELF): faults served without I/O, all threads. */
  minorFaults: signature<() => bigint>(),
  /** ru_majflt of getrusage(RUSAGE_SELF): faults that needed I/O. */
  majorFaults: signature<() => bigint>(),
  /** MMAPKIT_IOC_INFO; an unknown kind throws code 'EPROTO'. Failing ioctls throw with syscall 'ioctl'. */
  deviceInfo: signature<(fd: number) => DeviceInfo>(),
  /** MMAPKIT_IOC_STATS. */
  deviceStats: signature<(fd: number) => DeviceStats>(),
  /** MMAPKIT_IOC_RESET_STATS. */
  resetStats: signature<(fd: number) => void>(),
  /** MMAPKIT_IOC_PFN: the PFN backing `page`, an index into the device's buffer. */
  pagePfn: signature<(fd: number, page: bigint) => bigint>(),
  /**
   * ioctl(fd, request, arg) for any driver: `arg` is the request's struct as
   * bytes (empty: NULL, for requests without one), copied, handed to the
   * kernel, and returned as the kernel left it, with ioctl's non-negative
   * result. Retried on EINTR; a failure throws with syscall 'ioctl'.
   */
  ioctl: signature<(fd: number, request: bigint, arg: Uint8Array) => IoctlAnswer>(),
  /**
   * memfd_create(2) (MFD_CLOEXEC is always added); returns the fd. For
   * profile setups that hand a driver shmem pages (udmabuf).
   */
  memfdCreate: signature<(name: string, flags: number) => number>(),
  ftruncate: signature<(fd: number, length: bigint) => void>(),
  /** fcntl(2) with an int argument (F_ADD_SEALS, F_GET_SEALS, ...); returns its non-negative result. */
  fcntl: signature<(fd: number, cmd: number, arg: number) => number>(),
  /**
   * The raw delete_module(2) syscall (flags: O_NONBLOCK, O_TRUNC), so a
   * test sees the kernel's errno rather than rmmod's message.
   */
  deleteModule: signature<(name: string, flags: number) => void>(),
  /**
   * Benchmark (`mmapkit bench`): mmap()s `length` bytes of `target`, then
   * touches every page once, both timed: 'read' loads the page's first
   * 8-byte word, 'write' stores 0 there (a store with no load before it, so
   * the first fault is a write fault; the word's content is lost). `target` is 'anon' (MAP_PRIVATE anonymous memory, madvised
   * MADV_NOHUGEPAGE so that it has 4 KiB pages as PFN mappings do) or a
   * path, opened O_RDWR and mapped MAP_SHARED at offset 0. A fault while
   * touching unmaps and throws code 'SIGBUS'/'SIGSEGV'.
   */
  benchMapTouch: signature<(target: string, length: number, access: Access) => BenchMapping>(),
  /** Writes the benchmark pattern (word i depends on seed and i) over `length` bytes at `addr`. */
  benchFill: signature<(addr: bigint, length: number, seed: number) => void>(),
  /** Sums every 8-byte word of `length` bytes at `addr` (8-byte loads), `passes` times. */
  benchSequentialRead: signature<(addr: bigint, length: number, passes: number) => BenchTiming>(),
  /** `count` 8-byte loads at random aligned offsets below `length` (xorshift64* from `seed`). */
  benchRandomRead: signature<(addr: bigint, length: number, count: number, seed: number) => BenchTiming>(),
  /**
   * lseek(fd, 0) then read() of `length` bytes in `bufferSize` chunks, summing each
   * chunk's words as it arrives, `passes` times. Both sizes are multiples of 8.
   */
  benchReadSyscall: signature<(fd: number, length: number, bufferSize: number, passes: number) => BenchTiming>(),
  /** The offsets of benchRandomRead, each read with its own 8-byte pread(). */
  benchPread: signature<(fd: number, length: number, count: number, seed: number) => BenchTiming>(),
};

export type FunctionName = keyof typeof FUNCTIONS;

/** The addon's functions, typed as FUNCTIONS says. */
export type NativeFunctions = {
  readonly [K in keyof typeof FUNCTIONS]: (typeof FUNCTIONS)[K] extends Signature<infer F> ? F : never;
};

/** What the addon exports: its functions and its constants. */
export interface NativeAddon extends NativeFunctions {
  readonly constants: Readonly<Record<ConstantName, number>>;
}

export const FUNCTION_NAMES = Object.keys(FUNCTIONS) as FunctionName[];

export function isFunctionName(name: string): name is FunctionName {
  return Object.hasOwn(FUNCTIONS, name);
}
