/**
 * What a conformance case needs: the guest (through the relay socket that
 * the global setup provides), the native addon's functions running there,
 * and the device under test with its size and page size.
 */
import { connect } from 'node:net';
import { inject } from 'vitest';
import type { ConstantName } from '../../native/index.js';
import { MODULE_NAME, REFERENCE_DEVICE_PATHS } from '../../tools/reference-driver.js';
import { GuestClient, type RemoteNative } from '../../tools/vm/guest-client.js';

export interface DeviceUnderTest {
  guest: GuestClient;
  native: RemoteNative;
  c: Readonly<Record<ConstantName, number>>;
  path: string;
  /** Bytes mappable. */
  size: bigint;
  page: bigint;
  close(): void;
}

export async function openDeviceUnderTest(path: string = REFERENCE_DEVICE_PATHS.alias): Promise<DeviceUnderTest> {
  const socket = connect(inject('guestSocket'));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const guest = new GuestClient(socket, { requestTimeoutMs: 60_000 });
  await guest.ready;
  const c = (await guest.request({ op: 'native', args: { fn: 'constants', args: [] } })) as Readonly<
    Record<ConstantName, number>
  >;
  const size = BigInt((await guest.run(['cat', `/sys/module/${MODULE_NAME}/parameters/size`])).trim());
  const page = BigInt(await guest.native.pageSize());
  return { guest, native: guest.native, c, path, size, page, close: () => guest.close() };
}

/** One page whose every 8-byte word holds the page's index: a misplaced page shows at once. */
export function pagePattern(index: bigint, page: bigint): Buffer {
  const buffer = Buffer.alloc(Number(page));
  for (let at = 0; at < buffer.length; at += 8) buffer.writeBigUInt64LE(index, at);
  return buffer;
}
