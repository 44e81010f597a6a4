/**
 * ioctl request numbers and C struct layouts, for the profile setups that
 * speak a driver's ioctls through the addon's generic ioctl(fd, request,
 * bytes) (guest/setup-api.ts). Pure: no I/O, so the host's unit tests check
 * every number and offset against the C headers themselves.
 *
 * Little-endian x86_64 only, as the guest is: a struct is written down with
 * the offsets the compiler gives it there (test/unit/ioctl-layout.test.ts
 * compiles a C program to check them).
 */

/** _IOC_NONE, _IOC_WRITE, _IOC_READ of include/uapi/asm-generic/ioctl.h (x86 uses the generic ones). */
const IOC_NONE = 0n;
const IOC_WRITE = 1n;
const IOC_READ = 2n;

// _IOC_NRSHIFT 0, _IOC_TYPESHIFT 8, _IOC_SIZESHIFT 16 (14 bits), _IOC_DIRSHIFT 30.
const IOC_SIZE_LIMIT = 1 << 14;

/** A request's "type" byte: a character such as 'V' or a number. */
export type IocType = string | number;

function typeByte(type: IocType): bigint {
  const value = typeof type === 'string' ? type.charCodeAt(0) : type;
  if (!(Number.isInteger(value) && value >= 0 && value < 256) || (typeof type === 'string' && type.length !== 1)) {
    throw new RangeError(`ioctl type must be one character or a byte, not ${JSON.stringify(type)}`);
  }
  return BigInt(value);
}

/** _IOC(dir, type, nr, size) as a BigInt, as the addon's ioctl takes it. */
export function ioc(dir: bigint, type: IocType, nr: number, size: number): bigint {
  if (!(Number.isInteger(nr) && nr >= 0 && nr < 256)) throw new RangeError(`ioctl nr must be a byte, not ${nr}`);
  if (!(Number.isInteger(size) && size >= 0 && size < IOC_SIZE_LIMIT)) throw new RangeError(`ioctl size must be below 2^14, not ${size}`);
  return (dir << 30n) | (BigInt(size) << 16n) | (typeByte(type) << 8n) | BigInt(nr);
}

export const io = (type: IocType, nr: number): bigint => ioc(IOC_NONE, type, nr, 0);
/** The kernel writes the struct (the caller reads it). */
export const ior = (type: IocType, nr: number, size: number): bigint => ioc(IOC_READ, type, nr, size);
/** The kernel reads the struct. */
export const iow = (type: IocType, nr: number, size: number): bigint => ioc(IOC_WRITE, type, nr, size);
export const iowr = (type: IocType, nr: number, size: number): bigint => ioc(IOC_READ | IOC_WRITE, type, nr, size);

/** A field of a struct: where it is, and how wide. 64-bit fields read as BigInt, the others as number. */
export interface Field<T extends number | bigint = number | bigint> {
  offset: number;
  bytes: 1 | 2 | 4 | 8;
  signed: boolean;
  /** Carried by the type alone. */
  readonly value?: T;
}

export const u8 = (offset: number): Field<number> => ({ offset, bytes: 1, signed: false });
export const u16 = (offset: number): Field<number> => ({ offset, bytes: 2, signed: false });
export const u32 = (offset: number): Field<number> => ({ offset, bytes: 4, signed: false });
export const s32 = (offset: number): Field<number> => ({ offset, bytes: 4, signed: true });
export const u64 = (offset: number): Field<bigint> => ({ offset, bytes: 8, signed: false });

type Fields = Record<string, Field>;

/** The values of a struct's fields, by name. */
export type Values<F extends Fields> = { [K in keyof F]: F[K] extends Field<infer T> ? T : never };

export interface StructLayout<F extends Fields> {
  name: string;
  size: number;
  fields: F;
}

/**
 * A struct's layout: its size and the fields a setup uses (the others, and
 * padding, stay zero). Refuses a field past the end or two that overlap, so
 * that a typo in an offset fails when the module loads, not in the kernel.
 */
export function struct<F extends Fields>(name: string, size: number, fields: F): StructLayout<F> {
  const spans = Object.entries(fields)
    .map(([field, { offset, bytes }]) => ({ field, offset, end: offset + bytes }))
    .sort((a, b) => a.offset - b.offset);
  spans.forEach((span, i) => {
    if (!Number.isInteger(span.offset) || span.offset < 0 || span.end > size) throw new RangeError(`${name}.${span.field} lies outside its ${size} bytes`);
    const next = spans[i + 1];
    if (next !== undefined && next.offset < span.end) throw new RangeError(`${name}.${span.field} overlaps ${name}.${next.field}`);
  });
  return { name, size, fields };
}

function writeField(buffer: Buffer, field: Field, value: number | bigint, name: string): void {
  const { offset, bytes, signed } = field;
  if (bytes === 8) {
    if (typeof value !== 'bigint') throw new TypeError(`${name} is a 64-bit field: give a BigInt`);
    if (signed) buffer.writeBigInt64LE(value, offset);
    else buffer.writeBigUInt64LE(value, offset);
    return;
  }
  if (typeof value !== 'number') throw new TypeError(`${name} is a ${bytes * 8}-bit field: give a number`);
  // Buffer's own writers throw a RangeError for a value that does not fit.
  if (signed) buffer.writeIntLE(value, offset, bytes);
  else buffer.writeUIntLE(value, offset, bytes);
}

function readField(buffer: Uint8Array, field: Field): number | bigint {
  const view = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const { offset, bytes, signed } = field;
  if (bytes === 8) return signed ? view.readBigInt64LE(offset) : view.readBigUInt64LE(offset);
  return signed ? view.readIntLE(offset, bytes) : view.readUIntLE(offset, bytes);
}

/** The struct as bytes: the given fields set, everything else zero. */
export function encode<F extends Fields>(layout: StructLayout<F>, values: Partial<Values<F>>): Buffer {
  const buffer = Buffer.alloc(layout.size);
  for (const [name, value] of Object.entries(values) as [keyof F & string, number | bigint | undefined][]) {
    const field = layout.fields[name];
    if (field === undefined) throw new TypeError(`${layout.name} has no field ${name}`);
    if (value !== undefined) writeField(buffer, field, value, `${layout.name}.${name}`);
  }
  return buffer;
}

/** Every field of the struct, read out of `bytes` (which must be the struct's size). */
export function decode<F extends Fields>(layout: StructLayout<F>, bytes: Uint8Array): Values<F> {
  if (bytes.byteLength !== layout.size) throw new RangeError(`${layout.name} is ${layout.size} bytes, not ${bytes.byteLength}`);
  const values: Record<string, number | bigint> = {};
  for (const [name, field] of Object.entries(layout.fields)) values[name] = readField(bytes, field);
  return values as Values<F>;
}

/** A NUL-terminated string in a char array of the struct (a driver's or card's name). */
export function cString(bytes: Uint8Array, offset: number, length: number): string {
  const slice = Buffer.from(bytes.buffer, bytes.byteOffset + offset, length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end < 0 ? length : end).toString('latin1');
}
