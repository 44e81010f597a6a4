// guest/ioctl-layout.ts: the _IOC encoding and C struct layouts the profile setups share, checked against
// numbers the kernel's uapi headers give (DRM_IOCTL_MODE_CREATE_DUMB is 0xc02064b2 on x86-64, as strace prints it).
import { describe, expect, it } from 'vitest';
import { SetupStepError, io, ioc, ioctlStruct, iow, step, struct } from '../../guest/ioctl-layout.js';
import { DRM_IOCTL_MODE_CREATE_DUMB, DRM_IOCTL_MODE_MAP_DUMB, DRM_LAYOUTS } from '../profiles/real/setups/drm.js';

describe('ioc', () => {
  it('encodes as include/uapi/asm-generic/ioctl.h does', () => {
    expect(DRM_IOCTL_MODE_CREATE_DUMB).toBe(0xc02064b2n);
    expect(DRM_IOCTL_MODE_MAP_DUMB).toBe(0xc01064b3n);
    // VIDIOC_QUERYCAP = _IOR('V', 0, struct v4l2_capability) (104 bytes); SNDRV_PCM_IOCTL_PREPARE = _IO('A', 0x40); UDMABUF_CREATE = _IOW('u', 0x42, struct udmabuf_create).
    expect(ioc('read', 'V', 0, 104)).toBe(0x80685600n);
    expect(io('A', 0x40)).toBe(0x4140n);
    expect(iow('u', 0x42, struct([['memfd', 'u32'], ['flags', 'u32'], ['offset', 'u64'], ['size', 'u64']] as const))).toBe(0x40187542n);
  });

  it.each([
    ['dd', 0, 0, /one character/],
    ['d', 256, 0, /nr must be 0\.\.255/],
    ['d', 1, 1 << 14, /size must be 0\.\.16383/],
  ] as const)('refuses type %j, nr %d, size %d', (type, nr, size, reason) => {
    expect(() => ioc('readWrite', type, nr, size)).toThrow(reason);
  });
});

describe('struct', () => {
  it('lays fields out with natural alignment and pads the end to the largest member', () => {
    expect(DRM_LAYOUTS.createDumb.size).toBe(32);
    expect(DRM_LAYOUTS.createDumb.offsets.size).toBe(24);
    expect(DRM_LAYOUTS.mapDumb.size).toBe(16);
    const mixed = struct([['a', 'u8'], ['b', 'u64'], ['c', 'u16'], ['name', ['bytes', 3]]] as const);
    expect(mixed.offsets).toEqual({ a: 0, b: 8, c: 16, name: 18 });
    expect(mixed.size).toBe(24);
  });

  it('round-trips values, leaving fields not given zero', () => {
    const layout = struct([['u', 'u32'], ['s', 's32'], ['big', 'u64'], ['neg', 's64'], ['w', 'u16'], ['b', 'u8'], ['raw', ['bytes', 4]]] as const);
    const values = { u: 0xffffffff, s: -2, big: 1n << 63n, neg: -5n, w: 0xbeef, b: 7, raw: Uint8Array.from([1, 2, 3, 4]) };
    const decoded = layout.decode(layout.encode(values));
    expect({ ...decoded, raw: [...decoded.raw] }).toEqual({ ...values, raw: [1, 2, 3, 4] });
    expect(layout.decode(layout.encode({ b: 1 }))).toMatchObject({ u: 0, big: 0n, b: 1 });
  });

  it('refuses a field declared twice, bytes that do not fit and a buffer of another size', () => {
    expect(() => struct([['a', 'u8'], ['a', 'u32']] as const)).toThrow(/declared twice/);
    const layout = struct([['raw', ['bytes', 2]]] as const);
    expect(() => layout.encode({ raw: new Uint8Array(3) })).toThrow(/do not fit/);
    expect(() => layout.decode(new Uint8Array(3))).toThrow(/a struct of 2 bytes, not 3/);
  });
});

describe('step and ioctlStruct', () => {
  it('hands the kernel the struct and decodes what it left', () => {
    const layout = struct([['handle', 'u32'], ['pad', 'u32'], ['offset', 'u64']] as const);
    const native = {
      ioctl: (_fd: number, request: bigint, arg: Uint8Array) => {
        expect(request).toBe(0x1234n);
        const bytes = Buffer.from(arg);
        bytes.writeBigUInt64LE(0x100000000n + BigInt(bytes.readUInt32LE(0)) * 4096n, 8);
        return { result: 0, arg: bytes };
      },
    };
    expect(ioctlStruct(native, 3, 'MAP', 0x1234n, layout, { handle: 2 })).toEqual({ handle: 2, pad: 0, offset: 0x100002000n });
  });

  it('names the step and the errno of a failure', () => {
    const native = {
      ioctl: () => {
        throw Object.assign(new Error('EINVAL: invalid argument, ioctl'), { code: 'EINVAL' });
      },
    };
    let caught: unknown;
    try {
      ioctlStruct(native, 3, 'DRM_IOCTL_MODE_CREATE_DUMB 1x1x32', 1n, DRM_LAYOUTS.createDumb, {});
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SetupStepError);
    expect(caught).toMatchObject({ step: 'DRM_IOCTL_MODE_CREATE_DUMB 1x1x32', code: 'EINVAL', message: 'DRM_IOCTL_MODE_CREATE_DUMB 1x1x32: EINVAL' });
    expect(() => step('open /dev/x', () => {
      throw new Error('no code');
    })).toThrow(/^open \/dev\/x: EIO \(no code\)$/);
  });
});
