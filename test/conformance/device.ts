/**
 * What a conformance case needs: the guest (through the relay socket that
 * the global setup provides), the native addon's functions running there,
 * and the device under test as its profile describes it.
 */
import { connect } from 'node:net';
import path from 'node:path';
import { inject } from 'vitest';
import type { ConstantName } from '../../native/index.js';
import { moduleObject } from '../../tools/paths.js';
import type { Profile } from '../../tools/profile.js';
import { MODULE_NAME, REFERENCE_DEVICE_PATHS } from '../../tools/reference-driver.js';
import { GuestClient, type RemoteNative } from '../../tools/vm/guest-client.js';

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

export interface DeviceUnderTest extends Guest {
  path: string;
  /** Bytes mappable from `offset` on. */
  size: bigint;
  /** The mmap offset where the device's region starts. */
  offset: bigint;
}

export async function connectGuest(): Promise<Guest> {
  const socket = connect(inject('guestSocket'));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const guest = new GuestClient(socket, { requestTimeoutMs: 60_000 });
  const { kernel } = await guest.ready;
  const c = (await guest.request({ op: 'native', args: { fn: 'constants', args: [] } })) as Readonly<
    Record<ConstantName, number>
  >;
  const page = BigInt(await guest.native.pageSize());
  return { guest, native: guest.native, c, page, kernel, close: () => guest.close() };
}

/** The name the kernel gives a module file: its base name, '-' read as '_'. */
export const moduleName = (ko: string): string => path.basename(ko, '.ko').replace(/-/g, '_');

/** Loads a module unless it is loaded already (a case before may have unloaded it). */
export async function ensureModule(guest: GuestClient, ko: string, params = ''): Promise<void> {
  const name = moduleName(ko);
  await guest.run(['sh', '-c', `test -d /sys/module/${name} || insmod ${ko} ${params}`]);
}

export async function openProfileTarget(profile: Profile): Promise<DeviceUnderTest> {
  const base = await connectGuest();
  if (profile.module !== undefined) await ensureModule(base.guest, profile.module, profile.moduleParams);
  return { ...base, path: profile.device, size: BigInt(profile.size), offset: BigInt(profile.offset) };
}

/** The reference driver's remap device, its module (kmod/, built for the guest's kernel) loaded if it is not. */
export async function openReferenceDriver(): Promise<DeviceUnderTest> {
  const base = await connectGuest();
  await ensureModule(base.guest, moduleObject(base.kernel));
  const size = BigInt((await base.guest.run(['cat', `/sys/module/${MODULE_NAME}/parameters/size`])).trim());
  return { ...base, path: REFERENCE_DEVICE_PATHS.remap, size, offset: 0n };
}

/** One page whose every 8-byte word holds the page's index: a misplaced page shows at once. */
export function pagePattern(index: bigint, page: bigint): Buffer {
  const buffer = Buffer.alloc(Number(page));
  for (let at = 0; at < buffer.length; at += 8) buffer.writeBigUInt64LE(index, at);
  return buffer;
}
