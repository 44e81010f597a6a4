/**
 * The contract between a profile's "setup" and the suite, for drivers that
 * hand out mappings by ioctl rather than at a fixed offset of their node
 * (DRM dumb buffers, V4L2 MMAP buffers, an ALSA PCM's data area, dma-bufs).
 *
 * A setup is a TypeScript module named by the profile (anywhere on the host,
 * relative to the profile file). It runs inside the guest agent, on top of
 * the addon's one generic ioctl(fd, request, bytes), with the struct layouts
 * of its driver family written once (test/profiles/real/setups/). Its
 * default export is a TargetSetup.
 */
import type { ConstantName, NativeFunctions } from '../native/api.js';

export interface SetupContext {
  /** The addon, in the guest's own process: every call is synchronous. */
  native: NativeFunctions;
  c: Readonly<Record<ConstantName, number>>;
  pageSize: number;
  /** The profile's "device": the node the setup opens first. */
  device: string;
  /** The profile's "setupParams", as written there (the setup checks them). */
  params: Readonly<Record<string, unknown>>;
}

/**
 * How a second process reaches the same memory. 'reopen': opening `device`
 * again and mapping `offset` does (V4L2 buffers belong to the queue, not to
 * the open file). 'fork': only an fd inherited through fork() or passed over
 * a socket does (a DRM fake offset is valid for the drm_file that created it;
 * a dma-buf has no node to reopen; an ALSA substream is opened once).
 */
export type SecondProcessReach = 'reopen' | 'fork';

/** One object to map, as a setup made it. */
export interface SetupObject {
  /** The fd to mmap: the device's own, or a new one the driver returned (a dma-buf). */
  fd: number;
  /** Every fd the object holds, `fd` included: closing them all, and unmapping every mapping, releases it. */
  fds: number[];
  /** The mmap offset of the object (a fake offset, a V4L2 m.offset, 0 for a dma-buf). */
  offset: bigint;
  /** Bytes mappable from `offset` on, a page multiple. */
  size: bigint;
  reach: SecondProcessReach;
}

export interface TargetSetup {
  /**
   * Makes the object and returns it. The suite holds at most one object of
   * a profile at a time (a V4L2 queue or an ALSA substream cannot be set up
   * twice) and releases it by closing `fds` after unmapping what it mapped.
   * A failure throws, with the ioctl's errno (code) and what was being done.
   */
  open(context: SetupContext): SetupObject;
}

/** What is wrong with an object a setup returned, or undefined: the agent refuses such an object and closes its fds. */
export function checkSetupObject(object: unknown, pageSize: number): string | undefined {
  if (typeof object !== 'object' || object === null) return 'no object';
  const { fd, fds, offset, size, reach } = object as Partial<Record<keyof SetupObject, unknown>>;
  const isFd = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
  if (!isFd(fd)) return `fd ${String(fd)}, not an fd`;
  if (!Array.isArray(fds) || !fds.every(isFd) || !fds.includes(fd)) return 'fds that are not a list of fds including fd';
  const page = BigInt(pageSize);
  if (typeof offset !== 'bigint' || offset < 0n || offset % page !== 0n) return `offset ${String(offset)}, not a page multiple (a BigInt)`;
  if (typeof size !== 'bigint' || size <= 0n || size % page !== 0n) return `size ${String(size)}, not a positive page multiple (a BigInt)`;
  if (reach !== 'reopen' && reach !== 'fork') return `reach ${String(reach)}, not 'reopen' or 'fork'`;
  return undefined;
}
