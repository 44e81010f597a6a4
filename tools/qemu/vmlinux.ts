/**
 * Debian ships the kernel as a compressed bzImage. Under TCG, decompressing
 * it costs about 2.5 s on every boot, so we extract the ELF vmlinux once (as
 * the kernel's scripts/extract-vmlinux does) and boot that through QEMU's
 * PVH entry point (Debian builds with CONFIG_PVH=y).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SetupError } from '../exit-codes.js';
import { replaceAtomically } from './atomic-file.js';

interface Compression {
  name: string;
  magic: Buffer;
  command: [string, ...string[]];
}

const COMPRESSIONS: Compression[] = [
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), command: ['xz', '-dc'] },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), command: ['zstd', '-dcq'] },
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]), command: ['gzip', '-dc'] },
];

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const MAX_CANDIDATES = 4;

function offsetsOf(haystack: Buffer, needle: Buffer): number[] {
  const offsets: number[] = [];
  for (let at = haystack.indexOf(needle); at >= 0 && offsets.length < MAX_CANDIDATES; ) {
    offsets.push(at);
    at = haystack.indexOf(needle, at + 1);
  }
  return offsets;
}

/**
 * Finds the compressed payload inside a bzImage and decompresses it. The
 * payload is followed by other data, so the decompressor complains about
 * trailing garbage: only the ELF magic of the result tells success.
 */
export function extractVmlinux(bzImage: Buffer): Buffer {
  for (const compression of COMPRESSIONS) {
    for (const offset of offsetsOf(bzImage, compression.magic)) {
      const [command, ...args] = compression.command;
      const result = spawnSync(command, args, {
        input: bzImage.subarray(offset),
        maxBuffer: 1 << 30,
      });
      if (result.error === undefined && result.stdout.subarray(0, 4).equals(ELF_MAGIC)) {
        return result.stdout;
      }
    }
  }
  throw new SetupError('no ELF vmlinux found inside the kernel image (tried xz, zstd and gzip payloads)');
}

/** The cached vmlinux for a kernel image, extracted when missing or older than the image. */
export function cachedVmlinux(image: string, cacheDir: string): string {
  const target = path.join(cacheDir, 'vmlinux');
  if (existsSync(target) && statSync(target).mtimeMs >= statSync(image).mtimeMs) return target;
  mkdirSync(cacheDir, { recursive: true });
  const vmlinux = extractVmlinux(readFileSync(image));
  replaceAtomically(target, vmlinux);
  return target;
}
