/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Written here
 * rather than shelling out to cpio(1) so the archive is byte-for-byte
 * reproducible: fixed mtimes, owners and inode numbers.
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; data: Uint8Array }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';

const hex8 = (value: number): string => value.toString(16).padStart(8, '0');
const pad4 = (length: number): number => (4 - (length % 4)) % 4;

function header(ino: number, mode: number, size: number, name: string, rdev = { major: 0, minor: 0 }): Buffer {
  const fields = [
    ino, mode, 0 /* uid */, 0 /* gid */, 1 /* nlink */, 0 /* mtime */, size,
    0, 0 /* dev major/minor */, rdev.major, rdev.minor, Buffer.byteLength(name) + 1, 0 /* check */,
  ];
  // Pad by the encoded length: a non-ASCII name has more bytes than UTF-16 units.
  const text = Buffer.from('070701' + fields.map(hex8).join('') + name + '\0');
  return Buffer.concat([text, Buffer.alloc(pad4(text.length))]);
}

function record(ino: number, entry: CpioEntry): Buffer[] {
  const name = entry.path.replace(/^\/+/, '');
  switch (entry.type) {
    case 'dir':
      return [header(ino, S_IFDIR | entry.mode, 0, name)];
    case 'chardev':
      return [header(ino, S_IFCHR | entry.mode, 0, name, entry)];
    case 'symlink': {
      const target = Buffer.from(entry.target);
      return [header(ino, S_IFLNK | 0o777, target.length, name), target, Buffer.alloc(pad4(target.length))];
    }
    case 'file':
      return [
        header(ino, S_IFREG | entry.mode, entry.data.length, name),
        Buffer.from(entry.data),
        Buffer.alloc(pad4(entry.data.length)),
      ];
  }
}

export function writeCpio(entries: CpioEntry[]): Buffer {
  const parts = entries.flatMap((entry, index) => record(index + 1, entry));
  parts.push(header(0, 0, 0, TRAILER));
  return Buffer.concat(parts);
}
