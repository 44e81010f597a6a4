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

/** A page a racing worker found holding another index than its own (the page-index pattern). */
export interface WrongPage {
  /** The round (raceFaults) or iteration (raceMappings). */
  round: number;
  /** The index the page should hold. */
  page: number;
  /** What its first 8-byte word held. */
  seen: bigint;
  /** How many of its words were wrong. */
  wrongWords: number;
}

/**
 * How often an operation of a racing worker ended one way: `code` is 'ok', an errno name
 * ('EAGAIN'), a forked child's exit status ('0'; '1': it found a page holding another page's
 * index) or the signal that killed it ('SIGBUS').
 */
export interface RaceOutcome {
  op: 'mmap' | 'munmap' | 'mremap-shrink' | 'mremap-move' | 'fork' | 'child-exit' | 'child-signal' | 'delete_module';
  code: string;
  count: number;
}

/** What one racing worker did and saw. */
export interface RaceWorker {
  /** The CPU it was pinned to. */
  cpu: number;
  /** The CPUs it was seen running on (sched_getcpu after each touch). */
  ranOn: number[];
  /** Rounds or loop iterations it went through. */
  iterations: number;
  /** Pages it touched and checked. */
  touched: number;
  /** Touches (raceFaults) during which another worker finished one: how often the faults really ran at once. */
  overlapped: number;
  /** Wrong pages in all; `wrong` lists the first 16. */
  wrongCount: number;
  wrong: WrongPage[];
  outcomes: RaceOutcome[];
}

/** raceFaults: how a run of racing first-touch faults went. */
export interface RaceFaultsOptions {
  /** 1..8 workers; worker w is pinned to the w-th CPU the process may use (mod their count). */
  workers: number;
  /** One process per worker, each mapping on its own; else threads of one process sharing each round's mapping. */
  processes: boolean;
  /** 'same': every worker touches every page, in order; 'distinct': worker w touches pages w, w + workers, ... */
  pages: 'same' | 'distinct';
  /** 'write': the touch is a locked add of 0 (a write fault that leaves the word as it was). */
  access: Access;
  /** The index the page at `offset` holds. */
  firstIndex: number;
  /** Rounds to run, each on fresh mappings... */
  rounds: number;
  /** ...and more until the workers' touches overlapped this often in all (RaceWorker.overlapped; default 0)... */
  minOverlaps?: number;
  /** ...but none started after this many milliseconds. */
  timeLimitMs: number;
}

export interface RaceFaultsResult {
  /** Rounds run. */
  rounds: number;
  /** A mapping failed (the workers' `outcomes` say how) and the rounds stopped. */
  failed: boolean;
  workers: RaceWorker[];
}

export interface RaceMappingsOptions {
  /** One worker (a thread, pinned as for raceFaults) per role, 1..8. */
  roles: ('map' | 'mremap' | 'fork' | 'unload')[];
  /** The pattern index at `offset`, or -1 to touch without checking. */
  firstIndex: number;
  /** For the 'unload' role: the module delete_module(O_NONBLOCK) tries to unload. */
  module?: string;
  /** Iterations every worker does: each loop goes on until all have done this many (the fast ones race the slowest throughout)... */
  iterations: number;
  /** ...and none started after this many milliseconds. */
  timeLimitMs: number;
}

/** A process's fd or mapping that refers to a file asked about (holders). */
export interface Holder {
  pid: number;
  /** The process's name (/proc/PID/comm). */
  comm: string;
  /** 'fd': an open file descriptor; 'mapping': a mapped range (a VMA), named by its address range. */
  kind: 'fd' | 'mapping';
  /** The fd's number, or the mapping's "start-end" in hex as /proc/PID/map_files names it. */
  name: string;
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
  /** A new fd (the lowest free, O_CLOEXEC) for the same open file: F_DUPFD_CLOEXEC. */
  dup: signature<(fd: number) => number>(),
  mmap: signature<(addr: bigint, length: bigint, prot: number, flags: number, fd: number, offset: bigint) => bigint>(),
  /**
   * open(path, openFlags) then mmap(0, length, prot, flags, fd, offset), exactly as those two make
   * them, in one call: the fd and the mapping's address. A refused mmap closes the fd and throws
   * the mmap's error; a failed open throws as open does.
   */
  openMap: signature<(path: string, openFlags: number, length: bigint, prot: number, flags: number, offset: bigint) => { fd: number; addr: bigint }>(),
  munmap: signature<(addr: bigint, length: bigint) => void>(),
  mprotect: signature<(addr: bigint, length: bigint, prot: number) => void>(),
  /**
   * Copies out of a mapping; a fault throws a NativeError instead of killing the process, and so does
   * a copy stuck on one address for 1 s or through 1000 faults (a fault retried forever, taxonomy #11):
   * code 'ETIMEDOUT', `address` where it stuck (the watchdog of native/src/fault_guard.h).
   */
  readBytes: signature<(addr: bigint, length: number) => Buffer>(),
  /** Copies into a mapping; a fault or a 1 s stall throws a NativeError as for readBytes. */
  writeBytes: signature<(addr: bigint, data: Uint8Array) => void>(),
  /**
   * Touches one byte ('write' writes back the byte it read) and reports whether it faulted; a touch
   * that does not complete within 1 s throws code 'ETIMEDOUT', as readBytes does.
   */
  probe: signature<(addr: bigint, access: Access) => ProbeResult>(),
  /**
   * Reads `length` bytes at `offset` through a MAP_SHARED PROT_READ mapping
   * made by a forked child process: of `target`, a path the child opens
   * O_RDONLY, or an fd it inherits (the same open file, for objects a second
   * open of their node does not reach: a profile setup's reach 'fork').
   * Throws the child's open/mmap error, or code 'SIGBUS'/'SIGSEGV' if it died
   * of a fault, or 'ETIMEDOUT' if it did not finish within 10 s.
   */
  readInChild: signature<(target: string | number, offset: bigint, length: number) => Buffer>(),
  /**
   * Reads `length` bytes at `addr` in a forked child, through the copy of
   * this process's mapping that the child inherits; given an array of
   * addresses, `length` bytes at each, one after another, in one child.
   * Throws code 'SIGBUS'/'SIGSEGV' if the child died of a fault,
   * 'ETIMEDOUT' if it did not finish within 10 s.
   */
  readInForkedChild: signature<(addr: bigint | readonly bigint[], length: number) => Buffer>(),
  /**
   * fork()s a child that keeps the mapping at `addr` it inherits, munmap()s
   * this process's copy of [addr, addr + length), and only then lets the
   * child read the range `passes` times (1-16) through its copy, the bytes
   * of each pass returned one after another: what survives when the
   * mapping's other VMA is gone. The first pass faults in any page nobody
   * had touched. Once the fork succeeded the range is unmapped here, however
   * the child ends. Throws the munmap's errno, code 'SIGBUS'/'SIGSEGV' if the
   * child died of a fault, 'ETIMEDOUT' if it did not finish within 10 s.
   */
  readInChildAfterUnmap: signature<(addr: bigint, length: bigint, passes: number) => Buffer>(),
  /**
   * Writes `data` at the start of a MAP_SHARED PROT_READ|PROT_WRITE mapping
   * at `offset` made by a forked child: of `target`, a path the child opens
   * O_RDWR, or an fd it inherits (as readInChild). Throws the child's
   * open/mmap error, code 'SIGBUS'/'SIGSEGV' if it died of a fault,
   * 'ETIMEDOUT' if it did not finish within 10 s.
   */
  writeInChild: signature<(target: string | number, offset: bigint, data: Uint8Array) => void>(),
  /**
   * `length` bytes (at most 4096) at `addr` of this process, read by a forked
   * child as another process reads them: process_vm_readv(2) of this
   * process, or a pread(2) of /proc/PID/mem ('proc-mem'). Both pin the pages
   * with GUP; /proc/PID/mem then tries vm_ops->access. Fewer bytes than asked
   * when the read ended short; a failure throws its errno (syscall
   * 'process_vm_readv', 'open' or 'pread'), 'ETIMEDOUT' after 10 s.
   */
  readAsOtherProcess: signature<(how: 'process_vm_readv' | 'proc-mem', addr: bigint, length: number) => Buffer>(),
  /**
   * PTRACE_PEEKDATA of the 8 bytes at `addr` of this process, by a forked
   * child that seizes and interrupts the calling thread (PTRACE_SEIZE,
   * PTRACE_INTERRUPT: only that thread stops) and detaches again. A failure
   * throws its errno (syscall 'ptrace'), 'ETIMEDOUT' after 10 s.
   */
  peekData: signature<(addr: bigint) => Buffer>(),
  /**
   * fork()s a child that _exit(0)s at once, waits for it and returns its
   * exit status: every VMA is copied and torn down once, as a driver's
   * vm_ops open/close accounting must survive. A child killed by a signal
   * throws code 'SIGBUS' etc.
   */
  forkAndExit: signature<() => number>(),
  /**
   * Every fd and mapping of every process that refers to one of `paths`: the same device number
   * for a device node (an alias node counts), the same inode for any other file. Read from
   * /proc/PID/fd and /proc/PID/map_files (root only), each link stat()ed; a path that does not
   * exist throws (syscall 'stat').
   */
  holders: signature<(paths: string[]) => Holder[]>(),
  /**
   * Racing first-touch faults: `workers` threads (or processes) pinned to distinct CPUs map
   * `length` bytes of `fd` at `offset` (MAP_SHARED; PROT_READ, plus PROT_WRITE for 'write'),
   * start faulting together at a spinning barrier, check every word of each page they touch
   * against the page-index pattern, unmap, and go again with fresh mappings. Runs in a forked
   * child (its own process group): if the workers are not done within the time limit plus 5 s,
   * it is killed and the call throws code 'ETIMEDOUT' saying where each worker stopped (step,
   * page, round, kernel task state and wchan); a worker killed by a signal throws that signal
   * ('SIGBUS') with the same.
   */
  raceFaults: signature<(fd: number, offset: bigint, length: bigint, options: RaceFaultsOptions) => RaceFaultsResult>(),
  /**
   * Concurrent loops on `fd`, one thread per role, started together, in a forked child with the
   * deadline of raceFaults: 'map' maps `length` bytes at `offset` PROT_READ, touches the first and
   * last pages, unmaps; 'mremap' maps, shrinks to one page, moves it, touches, unmaps; 'fork' maps,
   * touches, forks a child that checks every page of its copy, unmaps while the child runs and
   * reaps it; 'unload' calls delete_module(module, O_NONBLOCK). Every outcome is counted.
   */
  raceMappings: signature<(fd: number, offset: bigint, length: bigint, options: RaceMappingsOptions) => { workers: RaceWorker[] }>(),
  /** `newAddr` (default 0n) is passed to the kernel whatever the flags. */
  mremap: signature<(oldAddr: bigint, oldSize: bigint, newSize: bigint, flags: number, newAddr?: bigint) => bigint>(),
  madvise: signature<(addr: bigint, length: bigint, advice: number) => void>(),
  mlock: signature<(addr: bigint, length: bigint) => void>(),
  munlock: signature<(addr: bigint, length: bigint) => void>(),
  msync: signature<(addr: bigint, length: bigint, flags: number) => void>(),
  /** One byte per page (bit 0: resident), for `length` rounded up to whole pages. */
  mincore: signature<(addr: bigint, length: bigint) => Buffer>(),
  /**
   * write(2) of `length` bytes (at most what a fresh pipe holds, 65536) at
   * `addr` into a fresh pipe, and the bytes read back from it: a mapping as
   * a syscall's buffer, which the kernel copies from with copy_from_user.
   * A buffer that faults throws code 'EFAULT' (syscall 'write'), or ends
   * the write short where the kernel kept what it had copied.
   */
  pipeThrough: signature<(addr: bigint, length: number) => Buffer>(),
  /**
   * read(2) from a fresh pipe holding `data` (at most what a pipe holds) into
   * `addr`: a mapping as the buffer the kernel copies to with copy_to_user.
   * Returns the count read; a buffer that faults throws code 'EFAULT'
   * (syscall 'read').
   */
  pipeInto: signature<(addr: bigint, data: Uint8Array) => number>(),
  /**
   * A shared FUTEX_WAIT (the key is the page's, found with GUP) at `addr` for
   * `value` (a 32-bit word) with a timeout of `timeoutMs`, at most 1000: the
   * calling thread waits. Returns when woken; throws its errno (syscall
   * 'futex': EAGAIN when the word does not hold `value`, EFAULT, ETIMEDOUT).
   */
  futexWait: signature<(addr: bigint, value: number, timeoutMs: number) => void>(),
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
   * The raw finit_module(2) syscall: loads the module file open at `fd` with
   * `params` ("name=value" words separated by spaces, as insmod takes them).
   */
  finitModule: signature<(fd: number, params: string, flags: number) => void>(),
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
