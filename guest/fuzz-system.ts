/**
 * The system `mmapkit fuzz` drives: the calls its model (guest/fuzz-model.ts)
 * predicts, as an interface, so that unit tests run the same model against a
 * fake (test/unit/fuzz-fake.ts) and the guest against the real kernel
 * through the addon (nativeSystem). Every call is synchronous; a failure
 * throws an error whose `code` is the errno name, or 'SIGBUS'/'SIGSEGV' for
 * a guarded access that faulted.
 */
import { spawnSync } from 'node:child_process';
import { readSync, writeSync } from 'node:fs';
import type { RaceFaultsOptions, RaceFaultsResult } from '../native/api.js';
import type { ConstantName, NativeAddon } from '../native/index.js';
import type { FuzzTarget } from './fuzz-types.js';

/** The addon constants the fuzz uses. */
export const FUZZ_CONSTANTS = [
  'PROT_NONE', 'PROT_READ', 'PROT_WRITE', 'MAP_SHARED', 'MAP_PRIVATE', 'O_RDONLY', 'O_RDWR', 'MREMAP_MAYMOVE',
  'MADV_NORMAL', 'MADV_DONTNEED', 'MADV_DONTFORK', 'MADV_DOFORK', 'MADV_WILLNEED', 'O_NONBLOCK',
] as const satisfies readonly ConstantName[];

export type FuzzConstants = Readonly<Record<(typeof FUZZ_CONSTANTS)[number], number>>;

export interface FuzzSystem {
  readonly page: number;
  readonly c: FuzzConstants;
  /** Opens the device under test: the one way the fuzz gets an fd (openTarget). */
  open(flags: number): number;
  close(fd: number): void;
  mmap(length: bigint, prot: number, flags: number, fd: number, offset: bigint): bigint;
  munmap(addr: bigint, length: bigint): void;
  mprotect(addr: bigint, length: bigint, prot: number): void;
  mremap(addr: bigint, oldSize: bigint, newSize: bigint, flags: number): bigint;
  madvise(addr: bigint, length: bigint, advice: number): void;
  readBytes(addr: bigint, length: number): Uint8Array;
  writeBytes(addr: bigint, data: Uint8Array): void;
  /** read(2) at a file position (pread): the bytes read. */
  pread(fd: number, length: number, position: number): Uint8Array;
  /** write(2) at a file position (pwrite): the count written. */
  pwrite(fd: number, data: Uint8Array, position: number): number;
  /** Reads through the copy of a mapping a forked child inherits. */
  readInForkedChild(addr: bigint, length: number): Uint8Array;
  /** fork() and an immediate _exit(0): every VMA copied and torn down once. */
  forkAndExit(): number;
  /** The addon's raceFaults: threads first-touching fresh mappings at the same moment, each page checked against the page-index pattern. */
  raceFaults(fd: number, offset: bigint, length: bigint, options: RaceFaultsOptions): RaceFaultsResult;
  /** delete_module(2) with O_NONBLOCK, as the conformance lifetime case calls it. */
  deleteModule(name: string): void;
  /** Runs a module's load command (FuzzModule.load); throws what it printed if it fails. */
  loadModule(argv: readonly string[]): void;
}

/**
 * How the fuzz opens the device under test, in one place: today the
 * profile's device node; a profile whose driver hands out its mapping
 * through an ioctl routes this through its setup instead.
 */
export function openTarget(native: NativeAddon, target: FuzzTarget, flags: number): number {
  return native.open(target.device, flags);
}

export function nativeSystem(native: NativeAddon, target: FuzzTarget): FuzzSystem {
  const c = Object.fromEntries(FUZZ_CONSTANTS.map((name) => [name, native.constants[name]])) as FuzzConstants;
  return {
    page: native.pageSize(),
    c,
    open: (flags) => openTarget(native, target, flags),
    close: (fd) => native.close(fd),
    mmap: (length, prot, flags, fd, offset) => native.mmap(0n, length, prot, flags, fd, offset),
    munmap: (addr, length) => native.munmap(addr, length),
    mprotect: (addr, length, prot) => native.mprotect(addr, length, prot),
    mremap: (addr, oldSize, newSize, flags) => native.mremap(addr, oldSize, newSize, flags),
    madvise: (addr, length, advice) => native.madvise(addr, length, advice),
    readBytes: (addr, length) => native.readBytes(addr, length),
    writeBytes: (addr, data) => native.writeBytes(addr, data),
    pread: (fd, length, position) => {
      const buffer = Buffer.alloc(length);
      return buffer.subarray(0, readSync(fd, buffer, 0, length, position));
    },
    pwrite: (fd, data, position) => writeSync(fd, data, 0, data.length, position),
    readInForkedChild: (addr, length) => native.readInForkedChild(addr, length),
    forkAndExit: () => native.forkAndExit(),
    raceFaults: (fd, offset, length, options) => native.raceFaults(fd, offset, length, options),
    deleteModule: (name) => native.deleteModule(name, c.O_NONBLOCK),
    loadModule: (argv) => {
      const ran = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
      if (ran.status !== 0) throw new Error(`${argv.join(' ')} failed (status ${String(ran.status)}): ${`${ran.stdout}${ran.stderr}`.trim() || String(ran.error)}`);
    },
  };
}
