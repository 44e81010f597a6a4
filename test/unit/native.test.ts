// Host tests of the native addon (no VM): mappings, fault trapping, errors,
// 64-bit offsets, the second-process readers, the calls on an existing
// mapping, pagemap, and what of the device ioctls can run without a device.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  ftruncateSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { CONSTANT_NAMES, FUNCTION_NAMES, decodePagemap, isNativeError, loadNative, type NativeError } from '../../native/index.js';
import { ADDON_PATH } from '../../tools/paths.js';

const native = loadNative();
const C = native.constants;
const PAGE = native.pageSize();
const PAGE_N = BigInt(PAGE);

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

function isTracked(addr: bigint, length: bigint): boolean {
  return mappings.some((m) => addr >= m.addr && addr + length <= m.addr + m.length);
}

/**
 * mremap of a tracked mapping that keeps the tracking true: afterAll must
 * unmap where the pages went, and never the range they left, which some
 * other thread may have mapped since.
 */
function remapTracked(addr: bigint, oldSize: bigint, newSize: bigint, flags: number, newAddr?: bigint): bigint {
  const index = mappings.findIndex((m) => m.addr === addr && m.length === oldSize);
  if (index < 0) throw new Error('remapTracked needs a whole tracked mapping');
  const moved = native.mremap(addr, oldSize, newSize, flags, newAddr);
  // MREMAP_DONTUNMAP leaves the old range mapped: it stays tracked.
  if ((flags & C.MREMAP_DONTUNMAP) === 0) mappings.splice(index, 1);
  // Moved into a tracked reservation (MREMAP_FIXED), it is unmapped with it.
  if (!isTracked(moved, newSize)) mappings.push({ addr: moved, length: newSize });
  return moved;
}

/** Bit 0 of each mincore() byte: whether that page is resident. */
function resident(addr: bigint, pages: number): number[] {
  return [...native.mincore(addr, BigInt(pages) * PAGE_N)].map((byte) => byte & 1);
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
  // native/api.ts types the functions, native/src/bindings.h exports them: a name added to,
  // dropped from or misspelt in either list must fail here.
  it('exports exactly the functions of native/api.ts and the constants of bindings.h', () => {
    const raw = createRequire(import.meta.url)(ADDON_PATH) as Record<string, unknown>;
    const exported = Object.keys(raw).filter((name) => name !== 'constants');
    expect(exported.sort()).toEqual([...FUNCTION_NAMES].sort());
    for (const name of exported) expect(typeof raw[name], name).toBe('function');
    expect(Object.keys(raw['constants'] as object)).toEqual(CONSTANT_NAMES);
  });

  it('exposes a frozen constants table and the page size', () => {
    expect(Object.isFrozen(C)).toBe(true);
    expect(C.MAP_SHARED_VALIDATE).toBe(3);
    expect(PAGE).toBeGreaterThan(0);
    expect(PAGE & (PAGE - 1)).toBe(0);
  });

  it('has the mremap, madvise, msync and open flag constants', () => {
    // include/uapi/linux/mman.h and asm-generic/mman-common.h, the same on
    // x86_64 and arm64; the open flags vary by architecture, Node knows them.
    expect([C.MREMAP_MAYMOVE, C.MREMAP_FIXED, C.MREMAP_DONTUNMAP]).toEqual([1, 2, 4]);
    expect([C.MADV_NORMAL, C.MADV_WILLNEED, C.MADV_DONTNEED, C.MADV_DONTFORK, C.MADV_DOFORK]).toEqual([0, 3, 4, 10, 11]);
    expect([C.MS_ASYNC, C.MS_INVALIDATE, C.MS_SYNC]).toEqual([1, 2, 4]);
    expect([C.MADV_FREE, C.MADV_DODUMP, C.MADV_WIPEONFORK, C.MADV_POPULATE_READ]).toEqual([8, 17, 18, 22]);
    expect([C.MAP_GROWSDOWN, C.MAP_HUGETLB, C.MAP_SYNC]).toEqual([0x100, 0x40000, 0x80000]);
    expect([C.O_NONBLOCK, C.O_SYNC]).toEqual([fsConstants.O_NONBLOCK, fsConstants.O_SYNC]);
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

describe('pipeThrough', () => {
  it('passes the mapped bytes through a pipe; a buffer that faults is EFAULT', () => {
    const addr = mapAnonymous(2, RW);
    const data = randomBytes(PAGE);
    native.writeBytes(addr + 100n, data);
    expect(native.pipeThrough(addr + 100n, PAGE).equals(data)).toBe(true);
    native.mprotect(addr + PAGE_N, PAGE_N, C.PROT_NONE);
    const error = nativeErrorOf(() => native.pipeThrough(addr + PAGE_N, 8));
    expect([error.code, error.syscall]).toEqual(['EFAULT', 'write']);
    expect(() => native.pipeThrough(addr, 65537)).toThrow(RangeError);
  });
});

describe('pipeInto', () => {
  it('reads a pipe into the mapping; a read-only buffer is EFAULT', () => {
    const addr = mapAnonymous(2, RW);
    const data = randomBytes(PAGE);
    expect(native.pipeInto(addr + 100n, data)).toBe(PAGE);
    expect(native.readBytes(addr + 100n, PAGE).equals(data)).toBe(true);
    native.mprotect(addr + PAGE_N, PAGE_N, C.PROT_READ);
    const error = nativeErrorOf(() => native.pipeInto(addr + PAGE_N, data.subarray(0, 8)));
    expect([error.code, error.syscall]).toEqual(['EFAULT', 'read']);
    expect(() => native.pipeInto(addr, new Uint8Array(65537))).toThrow(RangeError);
  });
});

describe('this process read by another (readAsOtherProcess, peekData), and a futex in it', () => {
  it('process_vm_readv and /proc/PID/mem give the bytes at an address; an unmapped one is EFAULT and EIO', () => {
    const addr = mapAnonymous(2, RW);
    const data = randomBytes(300);
    native.writeBytes(addr + 4000n, data);
    expect(native.readAsOtherProcess('process_vm_readv', addr + 4000n, 300).equals(data)).toBe(true);
    expect(native.readAsOtherProcess('proc-mem', addr + 4000n, 300).equals(data)).toBe(true);
    native.munmap(addr + PAGE_N, PAGE_N);
    const viaGup = nativeErrorOf(() => native.readAsOtherProcess('process_vm_readv', addr + PAGE_N, 8));
    expect([viaGup.code, viaGup.syscall]).toEqual(['EFAULT', 'process_vm_readv']);
    const viaMem = nativeErrorOf(() => native.readAsOtherProcess('proc-mem', addr + PAGE_N, 8));
    expect([viaMem.code, viaMem.syscall]).toEqual(['EIO', 'pread']);
    // Across the end of the mapping: the bytes up to it.
    expect(native.readAsOtherProcess('process_vm_readv', addr + PAGE_N - 4n, 8).length).toBe(4);
    expect(() => native.readAsOtherProcess('process_vm_readv', addr, 4097)).toThrow(RangeError);
    expect(() => native.readAsOtherProcess('ptrace' as 'proc-mem', addr, 8)).toThrow(TypeError);
  });

  it('peekData reads the word at an address of this process, seized by a child; an unmapped one is EIO', () => {
    const addr = mapAnonymous(2, RW);
    native.writeBytes(addr + 48n, Buffer.from('peekdat!'));
    expect(native.peekData(addr + 48n).toString()).toBe('peekdat!');
    native.munmap(addr + PAGE_N, PAGE_N);
    const error = nativeErrorOf(() => native.peekData(addr + PAGE_N));
    expect([error.code, error.syscall]).toEqual(['EIO', 'ptrace']);
  });

  it('futexWait fails at once with EAGAIN on a word that does not hold the value, waits out its timeout on one that does, EFAULT where nothing is mapped', () => {
    const fd = openTracked(shmFile('futex', PAGE), C.O_RDWR);
    const addr = map(PAGE_N, RW, C.MAP_SHARED, fd);
    native.writeBytes(addr, Buffer.from([7, 0, 0, 0]));
    const started = Date.now();
    const error = nativeErrorOf(() => native.futexWait(addr, 6, 1000));
    expect([error.code, error.syscall]).toEqual(['EAGAIN', 'futex']);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(nativeErrorOf(() => native.futexWait(addr, 7, 50)).code).toBe('ETIMEDOUT');
    native.munmap(addr, PAGE_N);
    expect(nativeErrorOf(() => native.futexWait(addr, 0, 50)).code).toBe('EFAULT');
    expect(() => native.futexWait(addr, 0, 1001)).toThrow(RangeError);
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
  it("sees bytes written through the parent's shared mapping, by path or by an inherited fd", () => {
    const path = shmFile('shared', 2 * PAGE);
    const fd = openTracked(path, C.O_RDWR);
    const addr = map(2n * PAGE_N, RW, C.MAP_SHARED, fd);
    const data = randomBytes(PAGE + 100);
    native.writeBytes(addr + 50n, data);
    expect(native.readInChild(path, 0n, 2 * PAGE).subarray(50, 50 + data.length).equals(data)).toBe(true);
    expect(native.readInChild(path, PAGE_N, 10).equals(data.subarray(PAGE - 50, PAGE - 40))).toBe(true);
    // Through the fd the child inherits, not an open of its own: the same bytes.
    expect(native.readInChild(fd, PAGE_N, 10).equals(data.subarray(PAGE - 50, PAGE - 40))).toBe(true);
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

  it('reports a fault in the child of readInChild with the path in the message', () => {
    const path = shmFile('child-message', PAGE);
    expect(nativeErrorOf(() => native.readInChild(path, PAGE_N, 1)).message).toBe(`SIGBUS in child reading '${path}'`);
  });
});

describe('writeInChild', () => {
  it('writes through a mapping of its own, of a path or of an fd it inherits, what the parent then reads', () => {
    const path = shmFile('child-write', 2 * PAGE);
    const fd = openTracked(path, C.O_RDWR);
    const addr = map(2n * PAGE_N, C.PROT_READ, C.MAP_SHARED, fd);
    native.writeInChild(path, PAGE_N, Buffer.from('by path'));
    native.writeInChild(fd, 0n, Buffer.from('by fd'));
    expect(native.readBytes(addr + PAGE_N, 7).toString()).toBe('by path');
    expect(native.readBytes(addr, 5).toString()).toBe('by fd');
  });

  it("reports the child's open error and a fault past the end of the file", () => {
    const missing = shmPath('write-missing');
    const openError = nativeErrorOf(() => native.writeInChild(missing, 0n, Buffer.from('x')));
    expect([openError.code, openError.syscall, openError.path]).toEqual(['ENOENT', 'open', missing]);
    const path = shmFile('write-sigbus', PAGE);
    expect(nativeErrorOf(() => native.writeInChild(path, PAGE_N, Buffer.from('x'))).message).toBe(`SIGBUS in child writing '${path}'`);
    expect(() => native.writeInChild(path, 0n, new Uint8Array(0))).toThrow(RangeError);
  });
});

describe('calls on an existing mapping', () => {
  it('mremap grows an anonymous mapping, moving it if need be, and keeps its content', () => {
    const addr = mapAnonymous(1, RW);
    const data = randomBytes(PAGE);
    native.writeBytes(addr, data);
    const grown = remapTracked(addr, PAGE_N, 4n * PAGE_N, C.MREMAP_MAYMOVE);
    expect(native.readBytes(grown, PAGE).equals(data)).toBe(true);
    expect(native.probe(grown + 3n * PAGE_N, 'write')).toBe('ok');
    expect(native.readBytes(grown + 3n * PAGE_N, 4)).toEqual(Buffer.alloc(4));
  });

  it('mremap with MREMAP_FIXED moves a mapping to the address given', () => {
    const reservation = mapAnonymous(2, C.PROT_NONE);
    const addr = mapAnonymous(1, RW);
    const data = randomBytes(PAGE);
    native.writeBytes(addr, data);
    const target = reservation + PAGE_N;
    const moved = remapTracked(addr, PAGE_N, PAGE_N, C.MREMAP_MAYMOVE | C.MREMAP_FIXED, target);
    expect(moved).toBe(target);
    expect(native.readBytes(moved, PAGE).equals(data)).toBe(true);
    // Only the page asked for was replaced.
    expect(native.probe(reservation, 'read')).toBe('SIGSEGV');
  });

  it('mremap with MREMAP_DONTUNMAP moves the pages and leaves the old range mapped and empty', () => {
    const addr = mapAnonymous(1, RW);
    const data = randomBytes(PAGE);
    native.writeBytes(addr, data);
    const moved = remapTracked(addr, PAGE_N, PAGE_N, C.MREMAP_MAYMOVE | C.MREMAP_DONTUNMAP);
    expect(moved).not.toBe(addr);
    expect(native.readBytes(moved, PAGE).equals(data)).toBe(true);
    expect(native.readBytes(addr, PAGE)).toEqual(Buffer.alloc(PAGE));
  });

  it('mremap passes errors on: MREMAP_FIXED without MREMAP_MAYMOVE is EINVAL', () => {
    const addr = mapAnonymous(1, RW);
    const target = mapAnonymous(1, C.PROT_NONE);
    const error = nativeErrorOf(() => native.mremap(addr, PAGE_N, PAGE_N, C.MREMAP_FIXED, target));
    expect([error.code, error.errno, error.syscall]).toEqual(['EINVAL', -22, 'mremap']);
    expect(() => native.mremap(addr, PAGE_N, PAGE_N, 0, -1n)).toThrow(TypeError);
  });

  it('madvise(MADV_DONTNEED) drops private anonymous pages, which read back as zeros', () => {
    const addr = mapAnonymous(2, RW);
    native.writeBytes(addr, Buffer.alloc(2 * PAGE, 0x77));
    native.madvise(addr, PAGE_N, C.MADV_DONTNEED);
    expect(resident(addr, 2)).toEqual([0, 1]);
    expect(native.readBytes(addr, PAGE)).toEqual(Buffer.alloc(PAGE));
    expect(native.readBytes(addr + PAGE_N, PAGE)).toEqual(Buffer.alloc(PAGE, 0x77));
    native.madvise(addr, 2n * PAGE_N, C.MADV_NORMAL);
    const error = nativeErrorOf(() => native.madvise(addr, PAGE_N, 0x7fff));
    expect([error.code, error.syscall]).toEqual(['EINVAL', 'madvise']);
  });

  it('mlock populates the pages it locks; munlock undoes it; both fail with ENOMEM where nothing is mapped', () => {
    const addr = mapAnonymous(2, RW);
    expect(resident(addr, 2)).toEqual([0, 0]);
    native.mlock(addr, 2n * PAGE_N);
    expect(resident(addr, 2)).toEqual([1, 1]);
    native.munlock(addr, 2n * PAGE_N);
    // Page 0 is never mapped (vm.mmap_min_addr).
    const lockError = nativeErrorOf(() => native.mlock(0n, PAGE_N));
    expect([lockError.code, lockError.errno, lockError.syscall]).toEqual(['ENOMEM', -12, 'mlock']);
    const unlockError = nativeErrorOf(() => native.munlock(0n, PAGE_N));
    expect([unlockError.code, unlockError.syscall]).toEqual(['ENOMEM', 'munlock']);
  });

  it('msync writes a shared tmpfs mapping back to its file and rejects MS_SYNC | MS_ASYNC', () => {
    const path = shmFile('msync', PAGE);
    const fd = openTracked(path, C.O_RDWR);
    const addr = map(PAGE_N, RW, C.MAP_SHARED, fd);
    const data = randomBytes(64);
    native.writeBytes(addr + 100n, data);
    native.msync(addr, PAGE_N, C.MS_SYNC);
    native.msync(addr, PAGE_N, C.MS_ASYNC | C.MS_INVALIDATE);
    expect(readFileSync(path).subarray(100, 164).equals(data)).toBe(true);
    const error = nativeErrorOf(() => native.msync(addr, PAGE_N, C.MS_SYNC | C.MS_ASYNC));
    expect([error.code, error.errno, error.syscall]).toEqual(['EINVAL', -22, 'msync']);
  });

  it('mincore shows the one page of three that was touched', () => {
    const addr = mapAnonymous(3, RW);
    native.writeBytes(addr + PAGE_N + 5n, Uint8Array.of(1));
    expect(resident(addr, 3)).toEqual([0, 1, 0]);
    // A partial last page still gets its byte.
    expect(native.mincore(addr, 2n * PAGE_N + 1n).length).toBe(3);
    const error = nativeErrorOf(() => native.mincore(addr + 1n, PAGE_N));
    expect([error.code, error.syscall]).toEqual(['EINVAL', 'mincore']);
  });
});

describe('pagemap', () => {
  const isRoot = process.getuid?.() === 0;

  it('shows a private anonymous page absent until written, then present, exclusive and anonymous', () => {
    const addr = mapAnonymous(1, RW);
    expect(decodePagemap(native.pagemap(addr)).present).toBe(false);
    native.writeBytes(addr + 9n, Uint8Array.of(9));
    const entry = decodePagemap(native.pagemap(addr + 9n));
    expect(entry).toMatchObject({ present: true, swapped: false, file: false, exclusive: true });
    // Without CAP_SYS_ADMIN the kernel zeroes the PFN.
    if (isRoot) expect(entry.pfn).toBeGreaterThan(0n);
    // The same page from another address in it, the same entry.
    expect(native.pagemap(addr + PAGE_N - 1n)).toBe(native.pagemap(addr));
  });

  it('marks a page of a shared tmpfs mapping as a file page', () => {
    const fd = openTracked(shmFile('pagemap-file', PAGE), C.O_RDWR);
    const addr = map(PAGE_N, RW, C.MAP_SHARED, fd);
    native.writeBytes(addr, Uint8Array.of(1));
    expect(decodePagemap(native.pagemap(addr))).toMatchObject({ present: true, file: true });
  });

  it('throws EINVAL for an address beyond the user address space', () => {
    const error = nativeErrorOf(() => native.pagemap(0xffff_8000_0000_0000n));
    expect([error.code, error.syscall, error.path]).toEqual(['EINVAL', 'pread', '/proc/self/pagemap']);
  });

  it('decodes every bit of constructed entries', () => {
    const none = { present: false, swapped: false, file: false, exclusive: false, softDirty: false, pfn: 0n };
    expect(decodePagemap(0n)).toEqual(none);
    expect(decodePagemap((1n << 63n) | 0x12345n)).toEqual({ ...none, present: true, pfn: 0x12345n });
    const pfnBits = (1n << 55n) - 1n;
    const all = (1n << 63n) | (1n << 61n) | (1n << 56n) | (1n << 55n) | pfnBits;
    expect(decodePagemap(all)).toEqual({
      present: true,
      swapped: false,
      file: true,
      exclusive: true,
      softDirty: true,
      pfn: pfnBits,
    });
    // Bits 57-60 are not flags decodePagemap reports, nor part of the PFN.
    expect(decodePagemap((1n << 63n) | (0xfn << 57n) | 7n)).toEqual({ ...none, present: true, pfn: 7n });
    // A swapped page's low bits are swap type and offset, not a PFN.
    expect(decodePagemap((1n << 62n) | (1n << 55n) | 0xabcn)).toEqual({ ...none, swapped: true, softDirty: true });
    expect(decodePagemap(0x8100_0000_0011_633bn)).toEqual({ ...none, present: true, exclusive: true, pfn: 0x11633bn });
    expect(() => decodePagemap(-1n)).toThrow(TypeError);
    expect(() => decodePagemap(1n << 64n)).toThrow(TypeError);
  });
});

describe('forked children', () => {
  it('forkAndExit returns the exit status 0 of a child that exits at once', () => {
    mapAnonymous(1, RW); // something to copy and tear down
    expect(native.forkAndExit()).toBe(0);
  });

  it("readInForkedChild sees the parent's bytes through an inherited shared and private mapping", () => {
    const shared = map(2n * PAGE_N, RW, C.MAP_SHARED | C.MAP_ANONYMOUS);
    const data = randomBytes(PAGE + 10);
    native.writeBytes(shared + 20n, data);
    expect(native.readInForkedChild(shared + 20n, data.length).equals(data)).toBe(true);
    const privateAddr = mapAnonymous(1, RW);
    native.writeBytes(privateAddr, data.subarray(0, 16));
    expect(native.readInForkedChild(privateAddr, 16)).toEqual(data.subarray(0, 16));
    expect(native.readInForkedChild(shared, 0).length).toBe(0);
  });

  it('readInForkedChild reads at each of several addresses in one child, in their order', () => {
    const shared = map(3n * PAGE_N, RW, C.MAP_SHARED | C.MAP_ANONYMOUS);
    const data = randomBytes(3 * PAGE);
    native.writeBytes(shared, data);
    const at = (page: number): bigint => shared + BigInt(page * PAGE);
    const read = native.readInForkedChild([at(2), at(0), at(1) + 5n], 64);
    expect(read).toEqual(Buffer.concat([data.subarray(2 * PAGE, 2 * PAGE + 64), data.subarray(0, 64), data.subarray(PAGE + 5, PAGE + 69)]));
    expect(() => native.readInForkedChild([], 1)).toThrow(RangeError);
    const none = mapAnonymous(1, C.PROT_NONE);
    expect(nativeErrorOf(() => native.readInForkedChild([at(0), none], 1)).message).toBe(`SIGSEGV in child reading 0x${at(0).toString(16)} and 1 more addresses`);
  });

  it('readInForkedChild reports SIGSEGV for a PROT_NONE mapping', () => {
    const addr = mapAnonymous(1, C.PROT_NONE);
    const error = nativeErrorOf(() => native.readInForkedChild(addr, 1));
    expect(error.code).toBe('SIGSEGV');
    expect(error.message).toBe(`SIGSEGV in child reading 0x${addr.toString(16)}`);
  });

  it('readInForkedChild faults on a MADV_DONTFORK mapping, which the child never got, until MADV_DOFORK', () => {
    const addr = map(PAGE_N, RW, C.MAP_SHARED | C.MAP_ANONYMOUS);
    native.writeBytes(addr, Uint8Array.of(42));
    native.madvise(addr, PAGE_N, C.MADV_DONTFORK);
    expect(nativeErrorOf(() => native.readInForkedChild(addr, 1)).code).toBe('SIGSEGV');
    native.madvise(addr, PAGE_N, C.MADV_DOFORK);
    expect([...native.readInForkedChild(addr, 1)]).toEqual([42]);
  });
});

describe('fault counters', () => {
  it('minorFaults grows when fresh anonymous pages are touched', () => {
    const pages = 16;
    const addr = mapAnonymous(pages, RW);
    const before = native.minorFaults();
    for (let i = 0; i < pages; i++) native.writeBytes(addr + BigInt(i) * PAGE_N, Uint8Array.of(1));
    // Other threads' faults count too, and a large folio may serve several
    // pages in one fault: only "at least one" is certain.
    expect(native.minorFaults() - before).toBeGreaterThanOrEqual(1n);
    expect(native.majorFaults()).toBeGreaterThanOrEqual(0n);
    expect(typeof native.majorFaults()).toBe('bigint');
  });
});

const PAGES = 8;
/** An fd of a tmpfs file of PAGES pages, every word of page i holding i. */
const patterned = (): number => {
  const content = new Uint8Array(PAGES * PAGE);
  const words = new BigUint64Array(content.buffer);
  for (let i = 0; i < words.length; i++) words[i] = BigInt(Math.floor((i * 8) / PAGE));
  return openTracked(shmFile('race', PAGES * PAGE, content), C.O_RDONLY);
};

describe('raceFaults on a tmpfs file holding the page-index pattern', () => {
  const race = (fd: number, minOverlaps: number | undefined, firstIndex = 0) =>
    native.raceFaults(fd, 0n, BigInt(PAGES * PAGE), { workers: 2, processes: false, pages: 'distinct', access: 'read', firstIndex, rounds: 3, minOverlaps, timeLimitMs: 300 });

  it('runs exactly the rounds asked for when no overlaps are asked for, each worker seeing its own pages', () => {
    const result = race(patterned(), undefined);
    expect(result.rounds).toBe(3);
    for (const worker of result.workers) {
      expect(worker).toMatchObject({ touched: 3 * (PAGES / 2), wrongCount: 0 });
      expect(worker.overlapped).toBeGreaterThanOrEqual(0);
      expect(worker.overlapped).toBeLessThanOrEqual(worker.touched);
    }
  });

  it('goes on past the rounds asked for until the overlaps are there or the time is up', () => {
    const started = Date.now();
    // More overlaps than 300 ms of rounds can give: the time cap ends it.
    const result = race(patterned(), 1_000_000_000);
    expect(result.rounds).toBeGreaterThan(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(result.workers.every((worker) => worker.wrongCount === 0)).toBe(true);
  });

  it('stops after the first round that saw a wrong page, however many rounds or overlaps were asked for', () => {
    // Told the window starts at page 1: every page holds the index before the one expected.
    const result = race(patterned(), 1_000_000_000, 1);
    expect(result.rounds).toBe(1);
    for (const worker of result.workers) expect(worker).toMatchObject({ touched: PAGES / 2, wrongCount: PAGES / 2 });
  });

  it('runs more workers than the CPUs it may use (on a host of fewer than 8), each round to its end', () => {
    // kMaxWorkers is 8: the workers take turns at the start line, which yields at once with more workers than CPUs.
    const workers = Math.min(8, availableParallelism() + 2);
    const result = native.raceFaults(patterned(), 0n, BigInt(PAGES * PAGE), { workers, processes: false, pages: 'same', access: 'read', firstIndex: 0, rounds: 3, timeLimitMs: 5000 });
    expect(result.rounds).toBe(3);
    expect(result.workers.map((worker) => [worker.touched, worker.wrongCount])).toEqual(Array.from({ length: workers }, () => [3 * PAGES, 0]));
  });

  it('refuses a negative minOverlaps', () => {
    expect(() => race(patterned(), -1)).toThrow(RangeError);
  });
});

describe('raceMappings on a tmpfs file holding the page-index pattern', () => {
  it('keeps every loop going until each has done its iterations, the fast ones past theirs', () => {
    // A fork takes a hundred map/munmap loops' time: the map loop races the fork loop to its last fork.
    const iterations = 20;
    const { workers } = native.raceMappings(patterned(), 0n, BigInt(PAGES * PAGE), { roles: ['fork', 'map'], firstIndex: 0, iterations, timeLimitMs: 10_000 });
    const [fork, map] = workers;
    expect(fork!.iterations).toBeGreaterThanOrEqual(iterations);
    expect(map!.iterations).toBeGreaterThan(iterations);
    expect(fork!.outcomes).toEqual([
      { op: 'mmap', code: 'ok', count: fork!.iterations },
      { op: 'child-exit', code: '0', count: fork!.iterations },
    ]);
    expect(workers.map((worker) => worker.wrongCount)).toEqual([0, 0]);
  });

  it('stops every loop at the time cap, however many iterations were asked for', () => {
    const started = Date.now();
    const { workers } = native.raceMappings(patterned(), 0n, BigInt(PAGES * PAGE), { roles: ['map', 'mremap'], firstIndex: 0, iterations: 1_000_000_000, timeLimitMs: 200 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(workers.every((worker) => worker.iterations > 0 && worker.iterations < 1_000_000_000 && worker.wrongCount === 0)).toBe(true);
  });
});

describe('device ioctls without a device', () => {
  it('fail on /dev/null with ENOTTY, shaped like a Node fs error with syscall ioctl', () => {
    const fd = openTracked('/dev/null', C.O_RDONLY);
    const calls: [string, () => unknown][] = [
      ['deviceInfo', () => native.deviceInfo(fd)],
      ['deviceStats', () => native.deviceStats(fd)],
      ['resetStats', () => native.resetStats(fd)],
      ['pagePfn', () => native.pagePfn(fd, 0n)],
    ];
    for (const [name, call] of calls) {
      const error = nativeErrorOf(call);
      expect([name, error.code, error.errno, error.syscall]).toEqual([name, 'ENOTTY', -25, 'ioctl']);
    }
  });

  it('fail with EBADF on a closed fd and reject a negative page with a TypeError', () => {
    expect(nativeErrorOf(() => native.deviceStats(-1)).code).toBe('EBADF');
    expect(() => native.pagePfn(0, -1n)).toThrow(TypeError);
  });
});

describe('finitModule', () => {
  it('reports the raw errno of finit_module for a file that is no module', () => {
    const fd = native.open('/proc/self/status', C.O_RDONLY);
    try {
      const error = nativeErrorOf(() => native.finitModule(fd, '', 0));
      expect(error.syscall).toBe('finit_module');
      // With CAP_SYS_MODULE the kernel refuses the file (EINVAL: /proc files have no size; ENOEXEC: no ELF
      // header), EPERM without it; ENOSYS from a kernel without modules.
      const expected = existsSync('/proc/modules') ? ['ENOEXEC', 'EPERM', 'EINVAL'] : ['ENOSYS'];
      expect(expected).toContain(error.code);
      expect(nativeErrorOf(() => native.finitModule(-1, '', 0)).code).toMatch(/^(EBADF|EPERM|ENOSYS)$/);
      expect(() => native.finitModule(fd, 'a\0b', 0)).toThrow(TypeError);
    } finally {
      native.close(fd);
    }
  });
});

describe('deleteModule', () => {
  it('reports the raw errno of delete_module for a module that does not exist', () => {
    const error = nativeErrorOf(() => native.deleteModule('mmapkit_no_such_module', C.O_NONBLOCK));
    expect(error.syscall).toBe('delete_module');
    // ENOENT with CAP_SYS_MODULE, EPERM without; ENOSYS only from a kernel
    // built without module unloading, which then has no /proc/modules.
    const expected = existsSync('/proc/modules') ? ['ENOENT', 'EPERM'] : ['ENOSYS'];
    expect(expected).toContain(error.code);
    expect(() => native.deleteModule('mmapkit\0x', C.O_NONBLOCK)).toThrow(TypeError);
  });
});

describe('memfdCreate, ftruncate and fcntl (profile setups: udmabuf)', () => {
  it('make a sealed memfd whose size the seal then holds', () => {
    const fd = native.memfdCreate('mmapkit-test', C.MFD_ALLOW_SEALING);
    fds.push(fd);
    native.ftruncate(fd, BigInt(2 * PAGE));
    expect(native.fcntl(fd, C.F_GET_SEALS, 0) & C.F_SEAL_SHRINK).toBe(0);
    expect(native.fcntl(fd, C.F_ADD_SEALS, C.F_SEAL_SHRINK)).toBe(0);
    expect(native.fcntl(fd, C.F_GET_SEALS, 0) & C.F_SEAL_SHRINK).toBe(C.F_SEAL_SHRINK);
    const error = nativeErrorOf(() => native.ftruncate(fd, BigInt(PAGE)));
    expect([error.code, error.syscall]).toEqual(['EPERM', 'ftruncate']);
    native.ftruncate(fd, BigInt(3 * PAGE));
  });

  it('report errors shaped like Node fs errors, and refuse a length past off_t', () => {
    expect(nativeErrorOf(() => native.fcntl(-1, C.F_GET_SEALS, 0))).toMatchObject({ code: 'EBADF', syscall: 'fcntl' });
    const fd = native.memfdCreate('mmapkit-test', 0);
    fds.push(fd);
    // Without MFD_ALLOW_SEALING the memfd starts sealed with F_SEAL_SEAL: no seal can be added.
    expect(nativeErrorOf(() => native.fcntl(fd, C.F_ADD_SEALS, C.F_SEAL_SHRINK))).toMatchObject({ code: 'EPERM', syscall: 'fcntl' });
    expect(nativeErrorOf(() => native.ftruncate(fd, 1n << 63n))).toMatchObject({ code: 'EINVAL', syscall: 'ftruncate' });
    expect(nativeErrorOf(() => native.memfdCreate('x', -1))).toMatchObject({ code: 'EINVAL', syscall: 'memfd_create' });
  });
});

describe('openMap', () => {
  it('opens and maps in one call: the fd and a mapping of the file at the offset asked for', () => {
    const path = shmFile('open-map', 2 * PAGE, Buffer.concat([Buffer.alloc(PAGE, 1), Buffer.from('second page')]));
    const { fd, addr } = native.openMap(path, C.O_RDWR, PAGE_N, RW, C.MAP_SHARED, PAGE_N);
    fds.push(fd);
    mappings.push({ addr, length: PAGE_N });
    expect(native.readBytes(addr, 11).toString()).toBe('second page');
    expect(native.holders([path]).filter((holder) => holder.pid === process.pid)).toEqual([
      { pid: process.pid, comm: expect.any(String), kind: 'fd', name: String(fd) },
      { pid: process.pid, comm: expect.any(String), kind: 'mapping', name: `${addr.toString(16)}-${(addr + PAGE_N).toString(16)}` },
    ]);
  });

  it("throws the mmap's error for a refused mapping and leaves no fd of the file open", () => {
    const path = shmFile('open-map-refused', PAGE);
    // A shared writable mapping of a read-only fd: EACCES (do_mmap).
    const error = nativeErrorOf(() => native.openMap(path, C.O_RDONLY, PAGE_N, RW, C.MAP_SHARED, 0n));
    expect([error.code, error.syscall]).toEqual(['EACCES', 'mmap']);
    expect(native.holders([path])).toEqual([]);
  });

  it("throws the open's error, with the path, for a missing file", () => {
    const path = shmPath('open-map-missing');
    const error = nativeErrorOf(() => native.openMap(path, C.O_RDWR, PAGE_N, RW, C.MAP_SHARED, 0n));
    expect([error.code, error.syscall, error.path]).toEqual(['ENOENT', 'open', path]);
  });
});

describe('holders', () => {
  it('finds an fd of a device node through another node of the same device number', () => {
    const alias = shmPath('null-alias');
    // A second node for /dev/null's device (1, 3): what makes two nodes the same device is the number.
    const made = spawnSync('mknod', [alias, 'c', '1', '3']);
    expect(made.status, made.stderr.toString()).toBe(0);
    const fd = openTracked('/dev/null', C.O_RDONLY);
    expect(native.holders([alias])).toContainEqual({ pid: process.pid, comm: expect.any(String), kind: 'fd', name: String(fd) });
  });

  it("finds another process's fd and mapping, named with its comm", async () => {
    const path = shmFile('held-by-child', PAGE);
    // A python3 that holds the file open as fd 7 and mapped, until its stdin closes.
    const program = `import mmap, os, sys\nfd = os.open(${JSON.stringify(path)}, os.O_RDONLY)\nos.dup2(fd, 7)\nm = mmap.mmap(7, ${PAGE}, prot=mmap.PROT_READ)\nprint("ready", flush=True)\nsys.stdin.read()`;
    const child = spawn('python3', ['-c', program], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`python3 exited (${String(code)}) before it held the file`)));
      });
      const held = native.holders([path]).filter((holder) => holder.pid === child.pid);
      expect(held).toContainEqual({ pid: child.pid, comm: 'python3', kind: 'fd', name: '7' });
      expect(held.filter((holder) => holder.kind === 'mapping')).toHaveLength(1);
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once('close', resolve));
    }
    expect(native.holders([path])).toEqual([]);
  });

  it('throws ENOENT, with the path, for a path that does not exist', () => {
    const path = shmPath('holders-missing');
    const error = nativeErrorOf(() => native.holders([path]));
    expect([error.code, error.syscall, error.path]).toEqual(['ENOENT', 'stat', path]);
  });
});
