// Typed loader for the mmapkit native addon (native/src/*.cc); its API is native/api.ts.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import { FUNCTION_NAMES, type NativeAddon } from './api.js';
import { ADDON_FILE } from './location.js';

export * from './api.js';

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
 * What the addon throws. A failing syscall gives Node's fs error shape
 * (`code` 'EINVAL', `errno` -22, `syscall` 'mmap', plus `path` for calls
 * that take one); a fault during a guarded access gives `code` 'SIGBUS' or
 * 'SIGSEGV' and the faulting `address`, and a guarded access stuck on one
 * address gives 'ETIMEDOUT' and that `address`.
 */
export interface NativeError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  path?: string;
  address?: bigint;
}

const ADDON_URL = new URL(`../${ADDON_FILE}`, import.meta.url);

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
  const hasFunctions = FUNCTION_NAMES.every((name) => typeof record[name] === 'function');
  return hasFunctions && typeof record['constants'] === 'object' && record['constants'] !== null;
}
