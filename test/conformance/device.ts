/**
 * What a conformance case needs: the guest (through a relay socket that
 * the global setup provides), the native addon's functions running there,
 * and the device under test as its profile describes it.
 */
import { connect } from 'node:net';
import { inject } from 'vitest';
import type { ConstantName } from '../../native/index.js';
import { moduleObject } from '../../tools/paths.js';
import type { Profile } from '../../tools/profile.js';
import { MODULE_NAME, REFERENCE_DEVICE_PATHS } from '../../tools/reference-driver.js';
import type { GuestPattern } from '../../guest/protocol.js';
import { GuestClient, type NativeCall, type RemoteNative } from '../../tools/qemu/guest-client.js';
import { ensureModule } from '../../tools/qemu/guest-modules.js';
import { type RegionRecord, regionRecord } from '../../tools/test/region-record.js';
import { setupBundlePath } from '../../tools/test/setup-bundle.js';
import type { SetupObject } from '../../guest/setup-api.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The relay sockets of the run's guests (tools/test/guest-pool.ts): a worker uses one, by its pool id. */
    guestSockets: string[];
    /** A case's timeout, ms: some request deadlines of the shared guest (tools/qemu/deadlines.ts caseTimeoutMs). */
    caseTimeoutMs: number;
    /** The profiles this run tests, validated by the global setup. */
    profiles: Profile[];
  }
}

export interface Guest {
  guest: GuestClient;
  native: RemoteNative;
  c: Readonly<Record<ConstantName, number>>;
  page: bigint;
  kernel: string;
  /** The agent's pid (its ready message): the process that holds the case's fds and mappings. A guest that replaced a crashed one has another. */
  agentPid: number;
  close(): void;
}

/** An object a profile's setup made, as the suite holds it: `closed` once every fd of it was closed. */
export interface HeldObject extends SetupObject {
  closed: boolean;
}

export interface DeviceUnderTest extends Guest {
  path: string;
  /** Bytes mappable from `offset` on (for a setup profile: the current object's). */
  size: bigint;
  /** The mmap offset where the device's region starts (for a setup profile: the current object's). */
  offset: bigint;
  /**
   * For a setup profile, the object of the current case (openObject): every
   * open of `path` in the case is a dup of its fd (test/conformance/mappings.ts).
   */
  object?: HeldObject;
}

export interface ProfileTarget extends DeviceUnderTest {
  /** What the region held when the run first read it, and whether it changed on its own (tools/test/region-record.ts). */
  initial: RegionRecord;
  profile: Profile;
}

/**
 * The guest of this test worker: vitest numbers a project's workers 1 to its maxWorkers (VITEST_POOL_ID),
 * one per guest, so each guest runs one worker's files, one after another.
 */
function guestSocket(): string {
  const sockets = inject('guestSockets');
  const worker = Number(process.env.VITEST_POOL_ID ?? 1);
  return sockets[(worker - 1) % sockets.length]!;
}

export async function connectGuest(): Promise<Guest> {
  const socket = connect(guestSocket());
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  // The host's session enforces the real request deadline and answers for a hung guest; this one is a backstop.
  const guest = new GuestClient(socket, { requestTimeoutMs: inject('caseTimeoutMs') });
  // The ready message carries the addon's constants, the page size and the agent's pid: nothing to ask per connection.
  const { kernel, constants, pageSize, pid } = await guest.ready;
  return { guest, native: guest.native, c: constants, page: BigInt(pageSize), kernel, agentPid: pid, close: () => guest.close() };
}

/**
 * The profile's device, its module loaded, with the region's record: made by
 * `mmapkit test` before any case ran, or here by the first file to open the
 * profile (a plain `vitest run`, or a guest that rebooted since).
 */
export async function openProfileTarget(profile: Profile): Promise<ProfileTarget> {
  const base = await connectGuest();
  const loaded = profile.module === undefined ? Promise.resolve() : ensureModule(base.guest, profile.module, profile.moduleParams);
  const target: DeviceUnderTest & { profile: Profile } = { ...base, profile, path: profile.device, size: BigInt(profile.size ?? 0), offset: BigInt(profile.offset) };
  if (profile.setup === undefined) {
    return { ...target, initial: await regionRecord(base.guest, { device: profile.device, offset: target.offset, length: Number(target.size), console: profile.console }, loaded) };
  }
  await loaded;
  // A setup's object exists only while a case holds it: the first one is read for its initial content and released.
  const object = await openObject(target);
  try {
    return { ...target, initial: await regionRecord(base.guest, { device: profile.device, offset: object.offset, length: Number(object.size), fd: object.fd, console: profile.console }) };
  } finally {
    await releaseObject(target);
  }
}

/**
 * Runs the profile's setup in the guest (guest/setup-api.ts) and makes its
 * object the target's current one: `offset` and `size` are then the
 * object's. At most one at a time: a V4L2 queue or an ALSA substream cannot
 * be set up twice.
 */
export async function openObject(target: DeviceUnderTest & { profile: Profile }): Promise<HeldObject> {
  const { setup, size } = target.profile;
  if (setup === undefined) throw new Error(`${target.profile.name} has no setup`);
  if (target.object !== undefined && !target.object.closed) throw new Error('the previous object of this profile was not released');
  const object = { ...(await target.guest.targetOpen({ module: setupBundlePath(setup.module), device: target.path, params: setup.params })), closed: false };
  target.object = object;
  if (size !== undefined && BigInt(size) !== object.size) throw new Error(`the setup made an object of ${object.size} bytes, not the profile's "size" ${size}`);
  target.offset = object.offset;
  target.size = object.size;
  return object;
}

/** Closes every fd of the current object not closed yet (a case may have closed them: Mappings.closeAll). */
export async function closeObjectFds(target: DeviceUnderTest): Promise<void> {
  const object = target.object;
  if (object === undefined || object.closed) return;
  object.closed = true;
  for (const fd of new Set(object.fds)) await target.native.close(fd);
}

/** Releases the current object: its fds closed, none current until the next openObject. */
export async function releaseObject(target: DeviceUnderTest): Promise<void> {
  try {
    await closeObjectFds(target);
  } finally {
    target.object = undefined;
  }
}

/**
 * Runs `use` with what a second process reaches the device through: the node's
 * path, for a forked child that opens and maps it itself; for a setup object
 * that a second open does not reach (reach 'fork'), the object's fd, which the
 * child inherits; for one that a second open does reach (reach 'reopen'), a
 * second O_RDWR open of the node, closed after. A setup object is reached
 * through O_RDWR fds only (needsAccessMode): a driver may refuse a mapping of
 * an O_RDONLY fd (vb2_mmap wants the VM_SHARED that do_mmap clears for one,
 * catalogue B3), which is a finding of the access-mode cases, not of every case
 * that reads from a second process.
 */
async function inSecondProcess<T>(dut: DeviceUnderTest, use: (target: string | number) => Promise<T>): Promise<T> {
  const object = dut.object;
  if (object !== undefined && object.reach === 'fork') {
    if (object.closed) throw new Error('every fd of the object was closed: no second process can reach it');
    return use(object.fd);
  }
  if (object !== undefined) {
    const fd = await dut.native.open(dut.path, dut.c.O_RDWR);
    try {
      return await use(fd);
    } finally {
      await dut.native.close(fd);
    }
  }
  return use(dut.path);
}

/** Reads `length` bytes at `offset` of the device from a second process that maps it itself (inSecondProcess). */
export function readDeviceInChild(dut: DeviceUnderTest, offset: bigint, length: number): Promise<Buffer> {
  return inSecondProcess(dut, (target) => dut.native.readInChild(target, offset, length));
}

/** Writes `data` at `offset` of the device from a second process that maps it itself, read-write (inSecondProcess). */
export function writeDeviceInChild(dut: DeviceUnderTest, offset: bigint, data: Uint8Array): Promise<void> {
  return inSecondProcess(dut, (target) => dut.native.writeInChild(target, offset, data));
}

/** The reference driver's remap device, its module (kmod/, built for the guest's kernel) loaded if it is not. */
export async function openReferenceDriver(): Promise<DeviceUnderTest> {
  const base = await connectGuest();
  await ensureModule(base.guest, moduleObject(base.kernel));
  const size = BigInt((await base.guest.readFile(`/sys/module/${MODULE_NAME}/parameters/size`)).trim());
  return { ...base, path: REFERENCE_DEVICE_PATHS.remap, size, offset: 0n };
}

/**
 * Writes pagePattern(first), pagePattern(first + 1), ... over `count` pages from `addr` with one
 * writeBytes through that mapping, the bytes made in the guest (guest/protocol.ts patternBytes, unit
 * tested against pagePattern) instead of sent page by page.
 */
export async function writePagePatterns(dut: Guest, addr: bigint, first: bigint, count: bigint): Promise<void> {
  await dut.guest.writePattern(addr, pageIndexPattern(dut, first, count));
}

/** pagePattern(first), ..., pagePattern(first + count - 1), as the guest builds it (guest/protocol.ts patternBytes). */
export function pageIndexPattern(dut: Guest, first: bigint, count: bigint): GuestPattern {
  return { kind: 'pageIndex', pageSize: Number(dut.page), first, count: Number(count) };
}

/**
 * Reads with `read` (a native call returning the bytes of `count` pages, `passes` times over) and
 * compares them in the guest with pagePattern(first), ... each time: one request, and only the
 * verdict on the channel. Undefined when every pass matches; else which pass, page and word
 * first differed, and with what.
 */
export async function pagePatternsDiffer(dut: Guest, read: NativeCall, first: bigint, count: bigint, passes = 1): Promise<string | undefined> {
  const mismatch = await dut.guest.checkPattern(read, Array.from({ length: passes }, () => pageIndexPattern(dut, first, count)));
  if (mismatch === null) return undefined;
  const page = BigInt(mismatch.offset) / dut.page;
  const pass = page / count;
  const hex = (word: bigint): string => `0x${word.toString(16)}`;
  return (
    `${passes > 1 ? `pass ${pass + 1n} of ${passes}: ` : ''}page ${first + (page % count)} at byte ${BigInt(mismatch.offset) % dut.page} ` +
    `holds ${hex(mismatch.found)} instead of ${hex(mismatch.expected)}; ${mismatch.words} of ${(BigInt(passes) * count * dut.page) / 8n} words differ`
  );
}

/** One page whose every 8-byte word holds the page's index: a misplaced page shows at once. */
export function pagePattern(index: bigint, page: bigint): Buffer {
  const buffer = Buffer.alloc(Number(page));
  for (let at = 0; at < buffer.length; at += 8) buffer.writeBigUInt64LE(index, at);
  return buffer;
}
