/**
 * Opening and mapping devices inside a case, with everything undone after
 * it (munmap, close, and any restore step the case registers), newest first.
 *
 * A profile whose object a setup makes (guest/setup-api.ts) has one object
 * per case (DeviceUnderTest.object): every open of the device in the case is
 * a dup() of the object's fd, never a second open() of the node, which
 * need not reach the same memory (a DRM fake offset belongs to the open
 * file that made it). So content written through one mapping is seen
 * through another, and closeAll() closes every fd of it, the object's own
 * included, for a case about the last close.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { NativeCall } from '../../tools/qemu/guest-client.js';
import { MODULE_NAME } from '../../tools/reference-driver.js';
import { type DeviceUnderTest, closeObjectFds, openReferenceDriver, readDeviceInChild, writeDeviceInChild } from './device.js';

export interface MapOptions {
  length?: bigint;
  offset?: bigint;
  prot?: number;
  flags?: number;
  openFlags?: number;
  /** Map through this fd, which the case opened (open()), instead of a fresh open of the path. */
  fd?: number;
}

export interface Mapping {
  fd: number;
  addr: bigint;
  length: bigint;
}

/** [start, end) in the agent's address space. */
type Span = [bigint, bigint];

/** What is left of `span` once every span of `gone` is taken out of it. */
function remaining(span: Span, gone: readonly Span[]): Span[] {
  let left: Span[] = [span];
  for (const [goneStart, goneEnd] of gone) {
    left = left.flatMap(([start, end]): Span[] =>
      goneEnd <= start || goneStart >= end
        ? [[start, end]]
        : ([
            [start, goneStart],
            [goneEnd, end],
          ] as Span[]).filter(([from, to]) => from < to),
    );
  }
  return left;
}

/**
 * One undo step: a step of the case's own, or addon calls whose errors are ignored (a munmap of a
 * range the case changed, a close of an fd the case closed), decided when the step runs.
 */
type UndoStep = { run: () => Promise<unknown> } | { calls: () => NativeCall[] };

export class Mappings {
  private readonly undo: UndoStep[] = [];
  /** Ranges the case gave back to the kernel itself (released()): map()'s undo steps leave them alone. */
  private gone: Span[] = [];
  /** The fds this case opened of each path, not closed through closeAll. */
  private readonly held = new Map<string, Set<number>>();

  constructor(private readonly dut: DeviceUnderTest) {}

  /** Runs `step` when the case ends. */
  later(step: () => Promise<unknown>): void {
    this.undo.push({ run: step });
  }

  /**
   * Makes the calls `calls` gives when the case ends, their errors ignored. Consecutive steps of
   * this kind go to the guest as one batch (guest/protocol.ts BatchArgs): the same calls in the
   * same order, without a round trip each.
   */
  private laterCalls(calls: () => NativeCall[]): void {
    this.undo.push({ calls });
  }

  /**
   * An open of the node in the access mode asked for, even for a setup object, once a case whose
   * point is the fd's access mode said so (needsAccessMode) and the object is reached by a second
   * open (reach 'reopen'). Reset after each case.
   */
  private accessModes = false;

  /** For the rest of this case, open() of a setup object that a second open reaches opens the node with the flags asked for. */
  openInAccessMode(): void {
    this.accessModes = true;
    this.later(async () => {
      this.accessModes = false;
    });
  }

  /**
   * An fd of `path`: open(path, flags), or for the current setup object a
   * dup of its fd (which is O_RDWR: an O_RDONLY open gets it all the same,
   * so a case whose point is the fd's access mode calls needsAccessMode,
   * which makes this a real open for an object that a second open reaches).
   */
  async open(path: string, flags: number = this.dut.c.O_RDWR): Promise<number> {
    return this.openAs(path, flags, this.objectToDup(path, flags));
  }

  /** open(), the object to dup (objectToDup) already known. */
  private async openAs(path: string, flags: number, object: DeviceUnderTest['object']): Promise<number> {
    return this.hold(path, object !== undefined ? await this.dut.native.dup(object.fd) : await this.dut.native.open(path, flags));
  }

  /** The setup object whose fd an open of `path` dups, or undefined when it is a real open of the node. */
  private objectToDup(path: string, flags: number): DeviceUnderTest['object'] {
    const { c } = this.dut;
    const setupObject = this.objectAt(path);
    // A case about the fd's access mode needs a real open where a second open reaches the object.
    const object = this.accessModes && setupObject?.reach === 'reopen' ? undefined : setupObject;
    if (object !== undefined && (flags & (c.O_WRONLY | c.O_RDWR)) === c.O_WRONLY) {
      throw new Error(`${path}: the setup's object is reached through its O_RDWR fd only; an O_WRONLY fd of it cannot be made (needsAccessMode skips such a case)`);
    }
    return object;
  }

  /** `fd`, an fd of `path` the case now holds: closed when the case ends, unless closeAll or the case closed it. */
  private hold(path: string, fd: number): number {
    let fds = this.held.get(path);
    if (fds === undefined) this.held.set(path, (fds = new Set()));
    fds.add(fd);
    // A case may close the fd itself (catalogue D1); closing again then fails with EBADF, harmlessly.
    this.laterCalls(() => (fds.delete(fd) ? [{ fn: 'close', args: [fd] }] : []));
    return fd;
  }

  /**
   * Closes every fd this case holds of `path` (each open of it; for a setup
   * object, the object's own fds too), leaving the mappings: the last close
   * of the device is then the kernel's to do, at the last munmap.
   */
  async closeAll(path: string): Promise<void> {
    const fds = this.held.get(path) ?? new Set<number>();
    for (const fd of [...fds]) {
      fds.delete(fd);
      await this.dut.native.close(fd);
    }
    if (path === this.dut.path) await closeObjectFds(this.dut);
  }

  /**
   * Reads `length` bytes at `offset` of `path` from a second process that maps it itself: its own open,
   * or for a setup object that a second open does not reach (reach 'fork'), the fd it inherits.
   */
  readInChild(path: string, offset: bigint, length: number): Promise<Buffer> {
    return path === this.dut.path ? readDeviceInChild(this.dut, offset, length) : this.dut.native.readInChild(path, offset, length);
  }

  /** Writes `data` at `offset` of `path` from a second process, through a read-write mapping of its own (readInChild's counterpart). */
  writeInChild(path: string, offset: bigint, data: Uint8Array): Promise<void> {
    return path === this.dut.path ? writeDeviceInChild(this.dut, offset, data) : this.dut.native.writeInChild(path, offset, data);
  }

  private objectAt(path: string): DeviceUnderTest['object'] {
    const object = this.dut.object;
    if (object === undefined || path !== this.dut.path) return undefined;
    if (object.closed) throw new Error(`${path}: every fd of the setup's object was closed (closeAll): nothing can open it again in this case`);
    return object;
  }

  async map(path: string, options: MapOptions = {}): Promise<Mapping> {
    const { native, c } = this.dut;
    const length = options.length ?? this.dut.size;
    const prot = options.prot ?? c.PROT_READ | c.PROT_WRITE;
    const flags = options.flags ?? c.MAP_SHARED;
    const offset = options.offset ?? this.dut.offset;
    const openFlags = options.openFlags ?? c.O_RDWR;
    let fd = options.fd;
    let addr: bigint;
    const object = fd === undefined ? this.objectToDup(path, openFlags) : undefined;
    if (fd === undefined && object === undefined) {
      // A fresh open of the node and its mapping in one round trip (the addon's openMap); a refused
      // mapping leaves no fd open, as none was handed out.
      const opened = await native.openMap(path, openFlags, length, prot, flags, offset);
      fd = this.hold(path, opened.fd);
      addr = opened.addr;
    } else {
      fd ??= await this.openAs(path, openFlags, object);
      addr = await native.mmap(0n, length, prot, flags, fd, offset);
    }
    // The kernel gave this range out afresh: whatever the case released there before is not this mapping.
    this.gone = this.gone.flatMap((span) => remaining(span, [[addr, addr + length]]));
    // Only what the case did not give back itself: the agent may have mapped something else there since.
    this.laterCalls(() => remaining([addr, addr + length], this.gone).map(([start, end]) => ({ fn: 'munmap', args: [start, end - start] })));
    return { fd, addr, length };
  }

  /** Says that the case gave [addr, addr + length) back to the kernel itself (a munmap, a move, a shrink), so that no undo step unmaps it. */
  released(addr: bigint, length: bigint): void {
    this.gone.push([addr, addr + length]);
  }

  /** munmap()s part or all of a mapping made by map(), and remembers that the case did (released()). */
  async unmap(addr: bigint, length: bigint): Promise<void> {
    await this.dut.native.munmap(addr, length);
    this.released(addr, length);
  }

  /**
   * Undoes everything, newest first; consecutive addon calls in one batch, whose failed calls are
   * ignored. `then`, when given, is asked right behind the last batch, without waiting for its
   * answer: the relay forwards a connection's requests in the order they came (tools/qemu/relay.ts)
   * and the agent runs a batch whole before it reads the next request (guest/agent.ts serve), so
   * what `then` asks sees every undo step done, a round trip sooner.
   */
  async release<T>(then?: () => Promise<T>): Promise<T | undefined> {
    const calls: NativeCall[] = [];
    const flush = async (): Promise<void> => {
      if (calls.length > 0) await this.dut.guest.nativeBatch(calls.splice(0));
    };
    for (const step of this.undo.splice(0).reverse()) {
      if ('calls' in step) {
        calls.push(...step.calls());
        continue;
      }
      await flush();
      await step.run();
    }
    this.gone = [];
    const [, value] = await Promise.all([flush(), then?.()]);
    return value;
  }
}

/**
 * Writes zeroes over the device's whole region through `writer`, in one request: the agent maps
 * it, writes zeroes made there (no bulk bytes on the channel), and unmaps it (fillRegion). For the
 * setup's object, through the object's own fd, as every open of it in a case is a dup of that.
 */
export async function zeroBuffer(dut: DeviceUnderTest, writer: string): Promise<void> {
  const object = writer === dut.path ? dut.object : undefined;
  // A setup object whose every fd the case closed is unreachable; the next case gets a new one from the setup.
  if (object?.closed === true) return;
  await dut.guest.fillRegion({ path: writer, ...(object !== undefined && { fd: object.fd }), offset: dut.offset, pattern: { kind: 'zeroes', length: Number(dut.size) } });
}

/**
 * What the reference module left registered after a refused load: each misc device named
 * mmapkit* (/proc/misc lists every registered one by name, and its /dev node goes with it), its
 * debugfs directory, its sysfs module directory. Read by the agent itself: no shell to spawn.
 */
export async function referenceLeftovers(dut: DeviceUnderTest): Promise<string[]> {
  const misc = (await dut.guest.readFile('/proc/misc')).split('\n').map((line) => line.trim().split(/\s+/)[1] ?? '');
  const left = misc.filter((name) => name.startsWith(MODULE_NAME)).map((name) => `misc device ${name}`);
  for (const dir of [`/sys/kernel/debug/${MODULE_NAME}`, `/sys/module/${MODULE_NAME}`]) {
    if (await dut.guest.exists(dir)) left.push(dir);
  }
  return left;
}

/**
 * The frame of the reference driver's own case files: the driver opened once
 * for the file (`opened` receives it), each case's mappings undone after it,
 * then `afterCase` (a knob put back, say), and the connection closed at the end.
 */
export function useReferenceDriver(opened: (dut: DeviceUnderTest, mappings: Mappings) => void, afterCase?: () => Promise<void>): void {
  let dut: DeviceUnderTest | undefined;
  let mappings: Mappings | undefined;
  beforeAll(async () => {
    dut = await openReferenceDriver();
    mappings = new Mappings(dut);
    opened(dut, mappings);
  });
  afterEach(async () => {
    await mappings?.release();
    await afterCase?.();
  });
  afterAll(() => dut?.close());
}
