/**
 * What every profile setup (test/profiles/real/setups/) needs to speak a
 * driver family's ioctls over the addon's one generic ioctl(fd, request,
 * bytes): the _IOC request encoding, written once, and C struct layouts
 * declared field by field and packed with the C ABI's natural alignment
 * (x86-64: every scalar aligned to its size, the struct to its largest
 * member), so that a family writes each struct once, as its uapi header
 * does, and never counts offsets by hand.
 */
import type { NativeFunctions } from '../native/api.js';

/** _IOC_NONE, _IOC_WRITE, _IOC_READ as include/uapi/asm-generic/ioctl.h numbers them (x86 uses the generic ones). */
const DIRECTION = { none: 0n, write: 1n, read: 2n, readWrite: 3n } as const;
export type IocDirection = keyof typeof DIRECTION;

/** _IOC(dir, type, nr, size): nr in bits 0-7, type 8-15, size 16-29, dir 30-31. `type` is the header's character ('d' for DRM). */
export function ioc(dir: IocDirection, type: string, nr: number, size: number): bigint {
  const code = type.length === 1 ? type.charCodeAt(0) : Number.NaN;
  if (!(code >= 0 && code < 256)) throw new RangeError(`ioctl type must be one character, not ${JSON.stringify(type)}`);
  if (!Number.isInteger(nr) || nr < 0 || nr > 0xff) throw new RangeError(`ioctl nr must be 0..255, not ${nr}`);
  if (!Number.isInteger(size) || size < 0 || size >= 1 << 14) throw new RangeError(`ioctl size must be 0..16383, not ${size}`);
  return (DIRECTION[dir] << 30n) | (BigInt(size) << 16n) | (BigInt(code) << 8n) | BigInt(nr);
}

export const io = (type: string, nr: number): bigint => ioc('none', type, nr, 0);
export const ior = (type: string, nr: number, layout: StructLayout<FieldList>): bigint => ioc('read', type, nr, layout.size);
export const iow = (type: string, nr: number, layout: StructLayout<FieldList>): bigint => ioc('write', type, nr, layout.size);
export const iowr = (type: string, nr: number, layout: StructLayout<FieldList>): bigint => ioc('readWrite', type, nr, layout.size);

/** A scalar field: u64/s64 are BigInts, the rest numbers; ['bytes', n] is an n-byte array (char name[n], reserved words). */
export type FieldType = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 's64' | readonly ['bytes', number];
export type FieldList = readonly (readonly [string, FieldType])[];

type ValueOf<T extends FieldType> = T extends 'u64' | 's64' ? bigint : T extends readonly ['bytes', number] ? Uint8Array : number;

/** A struct's values by field name. */
export type StructValues<F extends FieldList> = { [E in F[number] as E[0]]: ValueOf<E[1]> };

export interface StructLayout<F extends FieldList> {
  /** sizeof(struct), trailing padding included. */
  readonly size: number;
  /** offsetof(struct, field). */
  readonly offsets: Readonly<Record<F[number][0], number>>;
  /** The struct's bytes; fields not given are zero (as a C initialiser leaves them). */
  encode(values: Partial<StructValues<F>>): Uint8Array;
  decode(bytes: Uint8Array): StructValues<F>;
}

const SCALAR: Record<Exclude<FieldType, readonly ['bytes', number]>, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8, s64: 8 };

const sizeOf = (type: FieldType): number => (typeof type === 'string' ? SCALAR[type] : type[1]);
const alignOf = (type: FieldType): number => (typeof type === 'string' ? SCALAR[type] : 1);
const alignUp = (value: number, to: number): number => Math.ceil(value / to) * to;

/** A struct laid out as the C compiler lays it out on x86-64 (and every LP64 ABI Linux runs on). */
export function struct<const F extends FieldList>(fields: F): StructLayout<F> {
  const offsets: Record<string, number> = {};
  let end = 0;
  let align = 1;
  for (const [name, type] of fields) {
    if (name in offsets) throw new Error(`struct field ${name} is declared twice`);
    end = alignUp(end, alignOf(type));
    offsets[name] = end;
    end += sizeOf(type);
    align = Math.max(align, alignOf(type));
  }
  const size = alignUp(end, align);
  return {
    size,
    offsets: offsets as Record<F[number][0], number>,
    encode(values) {
      const bytes = Buffer.alloc(size);
      for (const [name, type] of fields) {
        const value = (values as Record<string, unknown>)[name];
        if (value === undefined) continue;
        const at = offsets[name]!;
        if (typeof type !== 'string') {
          const given = value as Uint8Array;
          if (given.length > type[1]) throw new RangeError(`${name}: ${given.length} bytes do not fit in ${type[1]}`);
          bytes.set(given, at);
        } else if (type === 'u64') bytes.writeBigUInt64LE(value as bigint, at);
        else if (type === 's64') bytes.writeBigInt64LE(value as bigint, at);
        else if (type === 'u32') bytes.writeUInt32LE(value as number, at);
        else if (type === 's32') bytes.writeInt32LE(value as number, at);
        else if (type === 'u16') bytes.writeUInt16LE(value as number, at);
        else bytes.writeUInt8(value as number, at);
      }
      return bytes;
    },
    decode(raw) {
      if (raw.length !== size) throw new RangeError(`a struct of ${size} bytes, not ${raw.length}`);
      const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      const values: Record<string, unknown> = {};
      for (const [name, type] of fields) {
        const at = offsets[name]!;
        if (typeof type !== 'string') values[name] = Uint8Array.prototype.slice.call(bytes, at, at + type[1]);
        else if (type === 'u64') values[name] = bytes.readBigUInt64LE(at);
        else if (type === 's64') values[name] = bytes.readBigInt64LE(at);
        else if (type === 'u32') values[name] = bytes.readUInt32LE(at);
        else if (type === 's32') values[name] = bytes.readInt32LE(at);
        else if (type === 'u16') values[name] = bytes.readUInt16LE(at);
        else values[name] = bytes.readUInt8(at);
      }
      return values as StructValues<F>;
    },
  };
}

/**
 * A setup step that failed: the error a setup throws, with what was being
 * done (`step`, e.g. "DRM_IOCTL_MODE_CREATE_DUMB 512x512x32") and the errno's
 * name as `code`, which pre-flight prints (tools/test/preflight.ts).
 */
export class SetupStepError extends Error {
  constructor(
    readonly step: string,
    readonly code: string,
    detail?: string,
  ) {
    super(`${step}: ${code}${detail !== undefined ? ` (${detail})` : ''}`);
    this.name = 'SetupStepError';
  }
}

/** Runs `call`, turning the addon's error into a SetupStepError naming `step` and its errno. */
export function step<T>(name: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof SetupStepError) throw error;
    const { code, message } = error as { code?: string; message: string };
    throw new SetupStepError(name, code ?? 'EIO', code === undefined ? message : undefined);
  }
}

/** ioctl(fd, request, &s) with `s` laid out by `layout`: the struct as the kernel left it; a failure names `name`. */
export function ioctlStruct<F extends FieldList>(
  native: Pick<NativeFunctions, 'ioctl'>,
  fd: number,
  name: string,
  request: bigint,
  layout: StructLayout<F>,
  values: Partial<StructValues<F>>,
): StructValues<F> {
  return step(name, () => layout.decode(native.ioctl(fd, request, layout.encode(values)).arg));
}
