// Host tests of the native addon (no VM): mappings, fault trapping, errors,
// 64-bit offsets and the second-process reader.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { isNativeError, loadNative, type NativeError } from '../../native/index.js';

const native = loadNative();
const C = native.constants;
const PAGE = native.pageSize();
const PAGE_N = BigInt(PAGE);
const ADDON_PATH = fileURLToPath(new URL('../../native/build/Release/mmapkit_native.node', import.meta.url));

const files: string[] = [];
const fds: number[] = [];
const mappings: { addr: bigint; length: bigint }[] = [];

afterAll(() => {
  for (const { addr, length } of mappings) native.munmap(addr, length);
  for (const fd of fds) native.close(fd);
  for (const file of files) rmSync(file, { force: true });
});

/** A fresh path on tmpfs, removed in afterAll. */
function shmPath(tag: string): string {
  const path = `/dev/shm/mmapkit-native-test-${process.pid}-${tag}`;
  files.push(path);
  return path;
}

/** A tmpfs file of `size` bytes (sparse beyond `content`). */
function shmFile(tag: string, size: number, content: Uint8Array = new Uint8Array(0)): string {
  const path = shmPath(tag);
  writeFileSync(path, content);
  const fd = openSync(path, 'r+');
  ftruncateSync(fd, size);
  closeSync(fd);
  return path;
}

function openTracked(path: string, flags: number): number {
  const fd = native.open(path, flags);
  fds.push(fd);
  return fd;
}

function map(length: bigint, prot: number, flags: number, fd = -1, offset = 0n): bigint {
  const addr = native.mmap(0n, length, prot, flags, fd, offset);
  mappings.push({ addr, length });
  return addr;
}

function mapAnonymous(pages: number, prot: number): bigint {
  return map(BigInt(pages) * PAGE_N, prot, C.MAP_PRIVATE | C.MAP_ANONYMOUS);
}

/** The NativeError `fn` throws; fails the test if it returns or throws anything else. */
function nativeErrorOf(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (error) {
    if (isNativeError(error)) return error;
    throw error;
  }
  throw new Error('expected a NativeError, but the call returned');
}

const RW = C.PROT_READ | C.PROT_WRITE;

describe('native addon basics', () => {
  it('exposes a frozen constants table and the page size', () => {
    expect(Object.isFrozen(C)).toBe(true);
    expect(C.MAP_SHARED_VALIDATE).toBe(3);
    expect(PAGE).toBeGreaterThan(0);
    expect(PAGE & (PAGE - 1)).toBe(0);
  });

  it('round-trips bytes through an anonymous mapping, across a page boundary', () => {
    const addr = mapAnonymous(2, RW);
    const data = randomBytes(PAGE);
    const at = addr + PAGE_N / 2n + 3n; // unaligned, spans both pages
    native.writeBytes(at, data);
    expect(native.readBytes(at, data.length).equals(data)).toBe(true);
    expect(native.readBytes(addr, 0).length).toBe(0);
  });
});

describe('fault trapping', () => {
  it('reports SIGSEGV for a probe of PROT_NONE and the process carries on', () => {
    const addr = mapAnonymous(1, C.PROT_NONE);
    expect(native.probe(addr, 'read')).toBe('SIGSEGV');
    expect(native.probe(addr, 'write')).toBe('SIGSEGV');
    // A second fault is caught too: the signal was unblocked after the jump.
    expect(native.probe(addr + 1n, 'read')).toBe('SIGSEGV');
    native.mprotect(addr, PAGE_N, RW);
    expect(native.probe(addr, 'write')).toBe('ok');
  });

  it('reports SIGSEGV for a write probe of a read-only page and leaves readable bytes intact', () => {
    const addr = mapAnonymous(1, RW);
    native.writeBytes(addr, Uint8Array.of(0xa5));
    expect(native.probe(addr, 'write')).toBe('ok');
    expect(native.readBytes(addr, 1)[0]).toBe(0xa5);
    native.mprotect(addr, PAGE_N, C.PROT_READ);
    expect(native.probe(addr, 'read')).toBe('ok');
    expect(native.probe(addr, 'write')).toBe('SIGSEGV');
    const error = nativeErrorOf(() => native.writeBytes(addr + 8n, Uint8Array.of(1)));
    expect(error.code).toBe('SIGSEGV');
    expect(error.address).toBe(addr + 8n);
  });

  it('throws SIGSEGV with the fault address when readBytes runs into PROT_NONE', () => {
    const addr = mapAnonymous(2, RW);
    native.mprotect(addr + PAGE_N, PAGE_N, C.PROT_NONE);
    const error = nativeErrorOf(() => native.readBytes(addr + PAGE_N - 4n, 8));
    expect(error.code).toBe('SIGSEGV');
    expect(error.address).toBe(addr + PAGE_N);
    expect(error.message).toBe(`SIGSEGV at 0x${(addr + PAGE_N).toString(16)}`);
  });

  it('reports SIGBUS past the end of a 1-page tmpfs file mapped over 2 pages', () => {
    const path = shmFile('sigbus', PAGE, Buffer.alloc(PAGE, 0x5a));
    const fd = openTracked(path, C.O_RDWR);
    const addr = map(2n * PAGE_N, RW, C.MAP_SHARED, fd);
    expect(native.probe(addr, 'read')).toBe('ok');
    expect(native.probe(addr + PAGE_N, 'read')).toBe('SIGBUS');
    expect(native.probe(addr + PAGE_N, 'write')).toBe('SIGBUS');

    const readError = nativeErrorOf(() => native.readBytes(addr + PAGE_N - 8n, 16));
    expect(readError.code).toBe('SIGBUS');
    expect(readError.address).toBe(addr + PAGE_N);
    expect(readError.message).toBe(`SIGBUS at 0x${(addr + PAGE_N).toString(16)}`);
    expect(nativeErrorOf(() => native.writeBytes(addr + PAGE_N - 2n, new Uint8Array(4))).code).toBe('SIGBUS');
    // The first page is still fine afterwards.
    expect(native.readBytes(addr, 4)).toEqual(Buffer.alloc(4, 0x5a));
  });

  it('traps faults on a worker thread as well', async () => {
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const native = require(workerData);
      const { PROT_NONE, MAP_PRIVATE, MAP_ANONYMOUS } = native.constants;
      const length = BigInt(native.pageSize());
      const addr = native.mmap(0n, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
      parentPort.postMessage(native.probe(addr, 'read'));
      native.munmap(addr, length);
    `;
    const worker = new Worker(source, { eval: true, workerData: ADDON_PATH });
    const result = await new Promise<unknown>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(result).toBe('SIGSEGV');
  });

  interface WasmApi {
    instantiate(bytes: Uint8Array): Promise<{ instance: { exports: Record<string, unknown> } }>;
    RuntimeError: new () => Error;
  }

  it("chains faults that are not its own to V8's WebAssembly trap handler", async () => {
    // (module (memory 1) (func (export "load") (param i32) (result i32) local.get 0 i32.load))
    const wasm = Uint8Array.of(
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f,
      0x03, 0x02, 0x01, 0x00,
      0x05, 0x03, 0x01, 0x00, 0x01,
      0x07, 0x08, 0x01, 0x04, 0x6c, 0x6f, 0x61, 0x64, 0x00, 0x00,
      0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x28, 0x02, 0x00, 0x0b,
    );
    // @types/node does not declare the WebAssembly global; only these two members are needed.
    const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const { instance } = await wasmApi.instantiate(wasm);
    const load = instance.exports['load'];
    if (typeof load !== 'function') throw new Error('wasm export missing');
    expect(load(0)).toBe(0);
    // Out of bounds: V8 catches this through its SIGSEGV handler, which
    // only works if ours passes the fault on.
    expect(() => load(0x1000_0000)).toThrow(wasmApi.RuntimeError);
  });

  it('lets an unguarded SIGSEGV kill the process as before', () => {
    const script = `require(${JSON.stringify(ADDON_PATH)}); process.kill(process.pid, 'SIGSEGV'); setTimeout(() => {}, 5000);`;
    // ulimit -c 0: no core file from the deliberate crash.
    const result = spawnSync('/bin/sh', ['-c', 'ulimit -c 0 && exec "$0" -e "$1"', process.execPath, script], {
      timeout: 10_000,
    });
    expect(result.signal).toBe('SIGSEGV');
  });
});

describe('errors', () => {
  it('throws EINVAL for a zero-length mmap, shaped like a Node fs error', () => {
    const error = nativeErrorOf(() => native.mmap(0n, 0n, C.PROT_READ, C.MAP_PRIVATE | C.MAP_ANONYMOUS, -1, 0n));
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('EINVAL');
    expect(error.errno).toBe(-22);
    expect(error.syscall).toBe('mmap');
    expect(error.message).toBe('EINVAL: invalid argument, mmap');
  });

  it('throws ENOENT for open of a missing path', () => {
    const path = shmPath('missing');
    const error = nativeErrorOf(() => native.open(path, C.O_RDONLY));
    expect(error.code).toBe('ENOENT');
    expect(error.errno).toBe(-2);
    expect(error.syscall).toBe('open');
    expect(error.path).toBe(path);
  });

  it('throws EBADF for close of a bad fd and EINVAL for an unaligned munmap', () => {
    expect(nativeErrorOf(() => native.close(-1)).code).toBe('EBADF');
    const addr = mapAnonymous(1, RW);
    const error = nativeErrorOf(() => native.munmap(addr + 1n, PAGE_N));
    expect([error.code, error.syscall]).toEqual(['EINVAL', 'munmap']);
  });

  it('rejects offsets outside [0, 2^64) and non-BigInt addresses with a TypeError', () => {
    const anon = C.MAP_PRIVATE | C.MAP_ANONYMOUS;
    expect(() => native.mmap(0n, PAGE_N, C.PROT_READ, anon, -1, -1n)).toThrow(TypeError);
    expect(() => native.mmap(0n, PAGE_N, C.PROT_READ, anon, -1, 1n << 64n)).toThrow(TypeError);
    expect(() => native.readInChild('/dev/null', -PAGE_N, 1)).toThrow(TypeError);
    // @ts-expect-error -- a number address, as plain JavaScript could pass it
    expect(() => native.readBytes(0, 1)).toThrow(TypeError);
  });
});

describe('64-bit offsets', () => {
  const FOUR_GIB = 2 ** 32;
  const payload = Buffer.from('beyond 4 GiB');

  /** A sparse tmpfs file of 2^32 + 2 pages with `payload` at 2^32 + 1 page. */
  function bigSparseFile(): string {
    const path = shmFile('sparse', FOUR_GIB + 2 * PAGE);
    const fd = openSync(path, 'r+');
    writeSync(fd, payload, 0, payload.length, FOUR_GIB + PAGE);
    closeSync(fd);
    return path;
  }

  it('passes an offset >= 2^32 through unchanged', () => {
    const fd = openTracked(bigSparseFile(), C.O_RDONLY);
    const addr = map(PAGE_N, C.PROT_READ, C.MAP_SHARED, fd, (1n << 32n) + PAGE_N);
    expect(native.readBytes(addr, payload.length)).toEqual(payload);
    // Truncated to 32 bits the offset would be 1 page, which holds zeros.
    const low = map(PAGE_N, C.PROT_READ, C.MAP_SHARED, fd, PAGE_N);
    expect(native.readBytes(low, payload.length)).toEqual(Buffer.alloc(payload.length));
  });

  it('hands offsets of 2^63 and 2^64 - 1 page to the kernel, which answers EOVERFLOW', () => {
    const fd = openTracked(shmFile('overflow', PAGE), C.O_RDONLY);
    // mm/mmap.c (linux 6.1), do_mmap(): for a file mapping, file_mmap_ok()
    // caps a regular file's pgoff at (MAX_LFS_FILESIZE - len) >> PAGE_SHIFT
    // and fails with -EOVERFLOW. These offsets are page-aligned (so the
    // arch's EINVAL check passes) and pgoff + pages does not wrap (so the
    // earlier "offset overflow?" check passes too): EOVERFLOW, not EINVAL.
    for (const offset of [1n << 63n, (1n << 64n) - PAGE_N]) {
      const error = nativeErrorOf(() => native.mmap(0n, PAGE_N, C.PROT_READ, C.MAP_SHARED, fd, offset));
      expect([error.code, error.errno, error.syscall]).toEqual(['EOVERFLOW', -75, 'mmap']);
    }
  });
});

describe('readInChild', () => {
  it("sees bytes written through the parent's shared mapping", () => {
    const path = shmFile('shared', 2 * PAGE);
    const fd = openTracked(path, C.O_RDWR);
    const addr = map(2n * PAGE_N, RW, C.MAP_SHARED, fd);
    const data = randomBytes(PAGE + 100);
    native.writeBytes(addr + 50n, data);
    expect(native.readInChild(path, 0n, 2 * PAGE).subarray(50, 50 + data.length).equals(data)).toBe(true);
    expect(native.readInChild(path, PAGE_N, 10).equals(data.subarray(PAGE - 50, PAGE - 40))).toBe(true);
  });

  it("reports the child's open and mmap errors with their errno", () => {
    const missing = shmPath('child-missing');
    const openError = nativeErrorOf(() => native.readInChild(missing, 0n, 1));
    expect([openError.code, openError.errno, openError.syscall, openError.path]).toEqual(['ENOENT', -2, 'open', missing]);
    const path = shmFile('child-einval', PAGE);
    const mmapError = nativeErrorOf(() => native.readInChild(path, 1n, 1));
    expect([mmapError.code, mmapError.syscall]).toEqual(['EINVAL', 'mmap']);
  });

  it('reports SIGBUS when the child reads past the end of the file', () => {
    const path = shmFile('child-sigbus', PAGE);
    expect(nativeErrorOf(() => native.readInChild(path, PAGE_N, 1)).code).toBe('SIGBUS');
  });
});
