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
  | 'O_RDWR';

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
  pageSize(): number;
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
  pageSize: true,
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
