/**
 * What a conformance case needs: the guest (through the relay socket that
 * the global setup provides), the native addon's functions running there,
 * and the device under test as its profile describes it.
 */
import { connect } from 'node:net';
import { inject } from 'vitest';
import type { ConstantName } from '../../native/index.js';
import { moduleObject } from '../../tools/paths.js';
import type { Profile } from '../../tools/profile.js';
import { MODULE_NAME, REFERENCE_DEVICE_PATHS } from '../../tools/reference-driver.js';
import { GuestClient, type RemoteNative } from '../../tools/qemu/guest-client.js';
import { ensureModule } from '../../tools/qemu/guest-modules.js';
import { setupBundlePath } from '../../tools/test/setup-bundle.js';
import type { SetupObject } from '../../guest/setup-api.js';

declare module 'vitest' {
  export interface ProvidedContext {
    guestSocket: string;
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

/** What the region held when the run first opened its profile, before any case could write to it. */
export type InitialContent = { nonZero: number; firstNonZero: number } | { error: string };

export interface ProfileTarget extends DeviceUnderTest {
  initial: InitialContent;
  profile: Profile;
}

export async function connectGuest(): Promise<Guest> {
  const socket = connect(inject('guestSocket'));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const guest = new GuestClient(socket, { requestTimeoutMs: 60_000 });
  // The ready message carries the addon's constants and the page size: nothing to ask per connection.
  const { kernel, constants, pageSize } = await guest.ready;
  return { guest, native: guest.native, c: constants, page: BigInt(pageSize), kernel, close: () => guest.close() };
}

export async function openProfileTarget(profile: Profile): Promise<ProfileTarget> {
  const base = await connectGuest();
  if (profile.module !== undefined) await ensureModule(base.guest, profile.module, profile.moduleParams);
  const target: DeviceUnderTest & { profile: Profile } = { ...base, profile, path: profile.device, size: BigInt(profile.size ?? 0), offset: BigInt(profile.offset) };
  if (profile.setup === undefined) return { ...target, initial: await initialContent(target) };
  // A setup's object exists only while a case holds it: the first one is read for its initial content and released.
  await openObject(target);
  try {
    return { ...target, initial: await initialContent(target) };
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
 * Reads `length` bytes at `offset` of the device from a second process: a
 * forked child that opens and maps the node itself, or, for a setup object
 * that a second open does not reach (reach 'fork'), that maps the fd it
 * inherits.
 */
export async function readDeviceInChild(dut: DeviceUnderTest, offset: bigint, length: number): Promise<Buffer> {
  const object = dut.object;
  if (object !== undefined && object.reach === 'fork') {
    if (object.closed) throw new Error('every fd of the object was closed: no second process can reach it');
    return dut.native.readFdInChild(object.fd, offset, length);
  }
  return dut.native.readInChild(dut.path, offset, length);
}

/**
 * The region's content as the first opener of the run saw it, kept in the
 * guest's /tmp so that every file of the suite, whatever its order, judges
 * the content right after load rather than after other cases wrote to it.
 * Read in a forked child with a watchdog, so a fault handler that never
 * installs a PTE gives an error here instead of hanging the agent.
 */
async function initialContent(dut: DeviceUnderTest): Promise<InitialContent> {
  const record = `/tmp/mmapkit-initial/${dut.path.replace(/\//g, '_')}.json`;
  const saved = await dut.guest.readFile(record).catch((error: { code?: string }) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  if (saved !== '') return JSON.parse(saved) as InitialContent;
  let initial: InitialContent;
  try {
    const bytes = await readDeviceInChild(dut, dut.offset, Number(dut.size));
    const first = bytes.findIndex((byte) => byte !== 0);
    initial = { nonZero: bytes.reduce((count, byte) => count + (byte !== 0 ? 1 : 0), 0), firstNonZero: first };
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    initial = { error: code ?? message };
  }
  await dut.guest.run(['sh', '-c', `mkdir -p /tmp/mmapkit-initial && printf '%s' '${JSON.stringify(initial)}' > ${record}`]);
  return initial;
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
  await dut.guest.writePattern(addr, { kind: 'pageIndex', pageSize: Number(dut.page), first, count: Number(count) });
}

/** One page whose every 8-byte word holds the page's index: a misplaced page shows at once. */
export function pagePattern(index: bigint, page: bigint): Buffer {
  const buffer = Buffer.alloc(Number(page));
  for (let at = 0; at < buffer.length; at += 8) buffer.writeBigUInt64LE(index, at);
  return buffer;
}
