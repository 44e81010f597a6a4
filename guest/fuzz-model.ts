/**
 * The model of `mmapkit fuzz`: what every fd and mapping of the device must
 * show and which outcomes each operation may have, from the profile's
 * declared choices and the errno sets the conformance cases allow
 * (guest/allowed-errnos.ts). Each operation runs on the system
 * (guest/fuzz-system.ts), is judged against the model, and updates it;
 * anything the model does not allow throws a FuzzMismatch.
 *
 * The device is modelled byte by byte (what read() and every shared mapping
 * must show), each mapping page by page: where in the region it looks, its
 * protection, shared or private, and for a private mapping the pages it has
 * copied on write (catalogue C2: they no longer follow the device).
 */
import type { RaceWorker } from '../native/api.js';
import { MOVE_VETOES, REFUSALS, WRITE_REFUSALS } from './allowed-errnos.js';
import type { FuzzSystem } from './fuzz-system.js';
import type { FuzzStep, FuzzTarget } from './fuzz-types.js';

export class FuzzMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzMismatch';
  }
}

export type Prot = 'none' | 'r' | 'rw';

export interface FdModel {
  fd: number;
  /** Opened O_RDWR. */
  writable: boolean;
}

export interface MappingModel {
  addr: bigint;
  pages: number;
  /** The region page that page 0 shows (vm_pgoff - the region's first page): may lie outside the region. */
  firstPage: number;
  prot: Prot;
  shared: boolean;
  /** The fd it was made from was O_RDWR (mprotect may add PROT_WRITE to a shared mapping). */
  fdWritable: boolean;
  /** MADV_DONTFORK: a child does not inherit it. */
  dontfork: boolean;
  /** Pages a private mapping copied on write, by page of the mapping. */
  copies: Map<number, Uint8Array>;
  /** In-region pages a grown mapping gained: they may show the region or fault (catalogue F1). */
  loose: Set<number>;
}

/** What an access to a page of a mapping must do. */
type PageState = 'content' | 'fault' | 'either';

const FAULTS = ['SIGBUS', 'SIGSEGV'];
/** What read()/write() at or past the end may answer instead of 0 bytes. */
const PAST_END = ['EINVAL', 'ENXIO', 'ENOSPC', 'EFBIG'];
/** Advisory madvise calls a file mapping may refuse (madvise_willneed: vfs_fadvise, 6.1 and 6.12). */
const ADVICE_REFUSALS = ['EINVAL', 'EBADF', 'ESPIPE'];

export const MAX_FDS = 4;
export const MAX_MAPPINGS = 8;
/** The most pages a step's numbered length maps (the edges 'rest', 'past' and 'whole' reach the region's end). */
export const MAX_MAP_PAGES = 16;
/**
 * A 'race' step's attempts: rounds, each on fresh mappings (so every first touch faults), more until
 * the workers' touches overlapped RACE_MIN_OVERLAPS times, with a cap on their time. A racy ->fault
 * (taxonomy #19) shows only in touches that overlap another worker's: about 70 % of them on an idle
 * host, and about one in four of those maps a wrong page with fixture-bug-racyfault (measured
 * 2026-12-01), so 4 rounds of 4 pages a worker are plenty; a round takes 2-3 ms there. On a loaded
 * host the vCPUs take turns and few touches overlap: the cap bounds the step.
 */
export const RACE_ROUNDS = 4;
export const RACE_MIN_OVERLAPS = 16;
export const RACE_TIME_LIMIT_MS = 1000;
/**
 * A replay is asked to show a recorded failure again, and 16 overlaps miss a race now and then
 * (a fresh-clone CI run's replay of fixture-bug-racyfault did, 2026-12-01): a replay's race steps
 * go on for many more overlaps and longer, and stop at the first wrong page (raceFaults does).
 * Measured the same evening, replaying that fixture's one-step sequence: on an idle host the wrong
 * page showed in round 0-5 (0.2 s) in 6 of 6; with one busy host thread beside the guest, in 3 of
 * 6 within the cap. A replay on a driver without the race pays the whole cap for each race step.
 */
export const RACE_REPLAY_MIN_OVERLAPS = 256;
export const RACE_REPLAY_TIME_LIMIT_MS = 4000;
/** The fewest pages each racing worker faults in a round. */
const RACE_PAGES_PER_WORKER = 4;
/** What delete_module(O_NONBLOCK) says while an open file (here: a mapping's) pins the module: the conformance lifetime case's answer. */
const UNLOAD_REFUSALS = ['EAGAIN'];

type Outcome<T> = { code: 'ok'; value: T } | { code: string };

function attempt<T>(call: () => T): Outcome<T> {
  try {
    return { code: 'ok', value: call() };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') return { code };
    throw error;
  }
}

const hex = (value: bigint | number): string => `0x${value.toString(16)}`;

function firstDifference(got: Uint8Array, want: Uint8Array): string {
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    if (got[i] !== want[i]) return `byte ${i}: got ${got[i] === undefined ? 'nothing' : hex(got[i]!)}, the model says ${want[i] === undefined ? 'nothing' : hex(want[i]!)}`;
  }
  return 'equal';
}

/** memcmp, not a loop in JavaScript: a whole-region read compares a MiB, and the guest runs under emulation. */
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

/** `length` bytes counting up from `seed`: what a write step writes. */
export const stepBytes = (seed: number, length: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (seed + i * 7 + 1) & 0xff);

const num = (step: FuzzStep, key: string): number => {
  const value = step[key];
  if (typeof value !== 'number') throw new Error(`fuzz step ${step.op} has no number ${key}`);
  return value;
};
const str = (step: FuzzStep, key: string): string => {
  const value = step[key];
  if (typeof value !== 'string') throw new Error(`fuzz step ${step.op} has no string ${key}`);
  return value;
};
const flag = (step: FuzzStep, key: string): boolean => step[key] === true;

/**
 * An edge of a range of `count` items, as a step names it: 'first', 'last',
 * 'end' (one past the last), 'huge' (2^32 pages, offset 2^44 with 4 KiB
 * pages), or a number taken modulo the count.
 */
export function edge(choice: FuzzStep[string], count: number): number {
  if (choice === 'first') return 0;
  if (choice === 'last') return count - 1;
  if (choice === 'end') return count;
  if (choice === 'huge') return 2 ** 32;
  return count === 0 ? 0 : Number(choice) % count;
}

/** The model and the system it judges: one sequence's world, from a fresh start. */
export class FuzzWorld {
  readonly fds: FdModel[] = [];
  readonly mappings: MappingModel[] = [];
  /** The device's region as read() and every shared mapping must show it (the fuzz's one copy, restored after each sequence). */
  readonly device: Uint8Array;
  readonly regionPages: number;
  /**
   * Region pages any write of this sequence aimed at, shared or private, through a mapping or
   * write(): what the reset after it must zero (a private write that leaked into the device
   * leaked there).
   */
  readonly touched = new Set<number>();
  /**
   * Mappings left mapped for good: those that outlived an unload the driver should have refused
   * (their munmap would run the freed module's code, taxonomy #8).
   */
  readonly abandoned: MappingModel[] = [];
  /** The module was unloaded and could not be loaded again: the device is gone, the fuzz must stop. */
  gone = false;

  constructor(
    readonly system: FuzzSystem,
    readonly target: FuzzTarget,
    content: Uint8Array,
    /** 'replay': a recorded failure is rerun, and its race steps try much harder to show it again. */
    private readonly effort: 'search' | 'replay' = 'search',
  ) {
    // Not copied: the fuzz restores the pages a sequence touched after it (guest/fuzz.ts DeviceState.reset).
    this.device = content;
    this.regionPages = target.size / system.page;
  }

  private get page(): number {
    return this.system.page;
  }

  private fail(step: FuzzStep, what: string): never {
    throw new FuzzMismatch(`${describeStep(step)}: ${what}`);
  }

  /** An outcome must be one of `allowed` ('ok' for success). */
  private expect(step: FuzzStep, got: string, allowed: readonly string[], why: string): void {
    if (!allowed.includes(got)) this.fail(step, `${got === 'ok' ? 'succeeded' : got}; allowed: ${allowed.join(', ')} (${why})`);
  }

  fdAt(slot: number): FdModel | undefined {
    return this.fds.length === 0 ? undefined : this.fds[slot % this.fds.length];
  }

  mappingAt(slot: number): MappingModel | undefined {
    return this.mappings.length === 0 ? undefined : this.mappings[slot % this.mappings.length];
  }

  /** Whether a step can run now (fast-check's Command.check): the fd or mapping it names exists, limits hold. */
  canRun(step: FuzzStep): boolean {
    switch (step.op) {
      case 'open':
        return this.fds.length < MAX_FDS;
      case 'close':
      case 'pread':
      case 'pwrite':
        return this.fds.length > 0;
      case 'mmap':
        return this.fds.length > 0 && this.mappings.length < MAX_MAPPINGS;
      case 'forkExit':
        return true;
      case 'race':
        return canRace(this.target, this.regionPages);
      case 'unload':
        // It closes every fd first: the conformance lifetime case's situation, a mapping that outlives them.
        return this.target.module !== undefined && this.mappings.length > 0;
      case 'write': {
        const mapping = this.mappingAt(num(step, 'slot'));
        // Never written: a page the model says must fault (a buggy driver may have mapped memory past its region there).
        return mapping !== undefined && this.pageState(mapping, edge(step.page!, mapping.pages)) !== 'fault';
      }
      case 'mremap':
        return this.mappings.length > 0 && (str(step, 'kind') !== 'shrink' || this.mappingAt(num(step, 'slot'))!.pages > 1);
      default:
        return this.mappings.length > 0;
    }
  }

  run(step: FuzzStep): void {
    switch (step.op) {
      case 'open':
        return this.open(step);
      case 'close':
        return this.close(step);
      case 'mmap':
        return this.mmap(step);
      case 'munmap':
        return this.munmap(step);
      case 'mprotect':
        return this.mprotect(step);
      case 'mremap':
        return this.mremap(step);
      case 'madvise':
        return this.madvise(step);
      case 'read':
        return this.read(step, false);
      case 'fork':
        return this.read(step, true);
      case 'readAll':
        return this.readAll(step);
      case 'write':
        return this.write(step);
      case 'pread':
        return this.pread(step);
      case 'pwrite':
        return this.pwrite(step);
      case 'forkExit':
        return this.forkExit(step);
      case 'race':
        return this.race(step);
      case 'unload':
        return this.unload(step);
      default:
        throw new Error(`unknown fuzz step ${step.op}`);
    }
  }

  // ------------------------------------------------------------- fds

  private open(step: FuzzStep): void {
    const writable = flag(step, 'rw');
    const { c } = this.system;
    const got = attempt(() => this.system.open(writable ? c.O_RDWR : c.O_RDONLY));
    // A device that is never written may refuse O_RDWR at open.
    const allowed = writable && !this.target.writable && !this.target.readWrite ? ['ok', ...WRITE_REFUSALS, 'EROFS'] : ['ok'];
    this.expect(step, got.code, allowed, 'open of the device');
    if ('value' in got) this.fds.push({ fd: got.value, writable });
  }

  private close(step: FuzzStep): void {
    const index = num(step, 'slot') % this.fds.length;
    const { fd } = this.fds[index]!;
    this.fds.splice(index, 1);
    // Its mappings stay: a mapping holds its own reference to the file (catalogue D1).
    this.expect(step, attempt(() => this.system.close(fd)).code, ['ok'], 'close');
  }

  // ------------------------------------------------------------- mappings

  private pageState(mapping: MappingModel, index: number): PageState {
    const regionPage = mapping.firstPage + index;
    if (regionPage < 0 || regionPage >= this.regionPages) return 'fault';
    return mapping.loose.has(index) ? 'either' : 'content';
  }

  /** What page `index` of a mapping must show: its private copy, or the device. */
  private pageBytes(mapping: MappingModel, index: number): Uint8Array {
    const copy = mapping.copies.get(index);
    if (copy !== undefined) return copy;
    const start = (mapping.firstPage + index) * this.page;
    return this.device.subarray(start, start + this.page);
  }

  private mmap(step: FuzzStep): void {
    const { c, page } = this.system;
    const fd = this.fdAt(num(step, 'fd'))!;
    const unaligned = step.off === 'unaligned';
    const firstPage = unaligned ? 0 : edge(step.off!, this.regionPages);
    const length = mapLength(step.len!, this.regionPages - firstPage, this.regionPages, page);
    const pages = Math.ceil(length / page);
    const prot = str(step, 'prot') as Prot;
    const shared = flag(step, 'shared');
    const offset = BigInt(this.target.offset) + BigInt(firstPage) * BigInt(page) + (unaligned ? 1n : 0n);
    const got = attempt(() => this.system.mmap(BigInt(length), protBits(prot, c), shared ? c.MAP_SHARED : c.MAP_PRIVATE, fd.fd, offset));
    const inRange = firstPage + pages <= this.regionPages;
    const writeShared = shared && prot === 'rw';
    let allowed: readonly string[];
    let why: string;
    if (length === 0 || unaligned) [allowed, why] = [['EINVAL'], 'catalogue A1, A4: do_mmap refuses a zero length or an unaligned offset'];
    else if (writeShared && !fd.writable) [allowed, why] = [['EACCES'], 'catalogue B2: a shared writable map of an O_RDONLY fd'];
    else if (!inRange) [allowed, why] = [['ok', ...REFUSALS, 'EOVERFLOW', ...(writeShared && !this.target.writable ? WRITE_REFUSALS : [])], 'catalogue A6: past the region, refused or every page past it faults'];
    else if (writeShared && !this.target.writable) [allowed, why] = [WRITE_REFUSALS, 'the profile says the device is not writable'];
    else if (!shared && this.target.private === 'cow') [allowed, why] = [['ok'], 'the profile promises copy-on-write MAP_PRIVATE'];
    else if (!shared && this.target.private === 'rejected' && prot === 'rw') [allowed, why] = [REFUSALS, 'the profile says MAP_PRIVATE with PROT_WRITE is refused (catalogue C1)'];
    else if (!shared) [allowed, why] = [['ok', ...REFUSALS], `MAP_PRIVATE, profile private: ${this.target.private}`];
    else [allowed, why] = [['ok'], 'inside the region'];
    if ('value' in got && !allowed.includes('ok')) {
      // Not kept: its pages may be memory past the region, never to be touched.
      this.system.munmap(got.value, BigInt(pages * page));
    }
    this.expect(step, got.code, allowed, why);
    if (!('value' in got)) return;
    this.mappings.push({ addr: got.value, pages, firstPage, prot, shared, fdWritable: fd.writable, dontfork: false, copies: new Map(), loose: new Set() });
  }

  private munmap(step: FuzzStep): void {
    const index = num(step, 'slot') % this.mappings.length;
    const mapping = this.mappings[index]!;
    const part = partOf(str(step, 'part'), mapping.pages);
    const [from, to] = part === 'whole' ? [0, mapping.pages] : part === 'first' ? [0, 1] : part === 'last' ? [mapping.pages - 1, mapping.pages] : [1, 2];
    const got = attempt(() => this.system.munmap(mapping.addr + BigInt(from * this.page), BigInt((to - from) * this.page)));
    // catalogue F7: unmapping part of a mapping splits it; only vm_ops->may_split can veto that (__split_vma, 6.1 and 6.12).
    this.expect(step, got.code, part === 'whole' ? ['ok'] : ['ok', ...MOVE_VETOES], part === 'whole' ? 'munmap of a whole mapping' : 'catalogue F7: a split may be vetoed');
    if (got.code !== 'ok') return;
    const pieces = [slice(mapping, 0, from, this.page), slice(mapping, to, mapping.pages, this.page)].filter((piece) => piece.pages > 0);
    this.mappings.splice(index, 1, ...pieces);
  }

  private mprotect(step: FuzzStep): void {
    const mapping = this.mappingAt(num(step, 'slot'))!;
    const prot = str(step, 'prot') as Prot;
    const got = attempt(() => this.system.mprotect(mapping.addr, BigInt(mapping.pages * this.page), protBits(prot, this.system.c)));
    let allowed: readonly string[] = ['ok'];
    let why = 'dropping PROT_WRITE, or PROT_WRITE where the mapping may write';
    if (prot === 'rw' && mapping.prot !== 'rw') {
      if (mapping.shared && !mapping.fdWritable) [allowed, why] = [['EACCES'], 'catalogue B2: no VM_MAYWRITE on a shared map of an O_RDONLY fd'];
      else if (mapping.shared && !this.target.writable) [allowed, why] = [WRITE_REFUSALS, 'the profile says the device is not writable'];
      else if (!mapping.shared && this.target.private !== 'cow') [allowed, why] = [['ok', 'EACCES'], 'a MAP_PRIVATE view the driver may have made read-only (VM_MAYWRITE cleared)'];
    }
    this.expect(step, got.code, allowed, why);
    if (got.code === 'ok') mapping.prot = prot;
  }

  private mremap(step: FuzzStep): void {
    const mapping = this.mappingAt(num(step, 'slot'))!;
    const kind = str(step, 'kind');
    const { c } = this.system;
    const oldSize = BigInt(mapping.pages * this.page);
    const pages = kind === 'shrink' ? mapping.pages - 1 : mapping.pages + 1;
    const got = attempt(() => this.system.mremap(mapping.addr, oldSize, BigInt(pages * this.page), kind === 'move' ? c.MREMAP_MAYMOVE : 0));
    if (kind === 'shrink') {
      // catalogue F3: a shrink unmaps the tail; only a may_split veto refuses it.
      this.expect(step, got.code, ['ok', ...MOVE_VETOES], 'catalogue F3: shrinking is allowed, or vetoed by may_split');
    } else {
      // catalogue F1: growing a VM_DONTEXPAND or VM_PFNMAP mapping is EFAULT (vma_to_resize, 6.1 and 6.12); else it grows,
      // and a page past the region faults. In place, the next page may be taken (ENOMEM); a move may be vetoed.
      this.expect(step, got.code, ['ok', 'EFAULT', 'ENOMEM', ...(kind === 'move' ? MOVE_VETOES : [])], 'catalogue F1: growing a mapping');
    }
    if (!('value' in got)) return;
    if (kind === 'shrink') {
      mapping.copies.delete(pages);
      mapping.loose.delete(pages);
    } else {
      mapping.addr = got.value;
      mapping.loose.add(mapping.pages);
    }
    mapping.pages = pages;
  }

  private madvise(step: FuzzStep): void {
    const mapping = this.mappingAt(num(step, 'slot'))!;
    const advice = str(step, 'advice');
    const { c } = this.system;
    const bits: Record<string, number> = { dontneed: c.MADV_DONTNEED, dontfork: c.MADV_DONTFORK, dofork: c.MADV_DOFORK, willneed: c.MADV_WILLNEED, normal: c.MADV_NORMAL };
    const got = attempt(() => this.system.madvise(mapping.addr, BigInt(mapping.pages * this.page), bits[advice]!));
    // catalogue G1: MADV_DONTNEED is EINVAL on VM_PFNMAP (can_madv_lru_vma); catalogue E2: MADV_DOFORK on VM_IO (madvise_vma_behavior).
    const allowed: Record<string, readonly string[]> = { dontneed: ['ok', 'EINVAL'], dontfork: ['ok', 'EINVAL'], dofork: ['ok', 'EINVAL'], willneed: ['ok', ...ADVICE_REFUSALS], normal: ['ok'] };
    this.expect(step, got.code, allowed[advice]!, `madvise ${advice}`);
    if (got.code !== 'ok') return;
    // Zapping a private mapping drops the pages it copied: it shows the device again.
    if (advice === 'dontneed' && !mapping.shared) mapping.copies.clear();
    if (advice === 'dontfork') mapping.dontfork = true;
    if (advice === 'dofork') mapping.dontfork = false;
  }

  /** A read through a mapping, here or (`forked`) in a forked child through the mapping it inherits. */
  private read(step: FuzzStep, forked: boolean): void {
    const mapping = this.mappingAt(num(step, 'slot'))!;
    const at = Math.min(edge(step.at!, this.page), this.page - 1);
    this.readPage(step, mapping, edge(step.page!, mapping.pages), at, Math.max(1, Math.min(num(step, 'len'), this.page - at)), forked);
  }

  /**
   * Every page of a mapping, whole. A run of pages that must all show content is read with one
   * call and then judged page by page as readPage does (a system call and a guarded access per page
   * cost about 0.1 ms each under emulation, and a mapping may have 256 pages); if that read faults,
   * the run is read again page by page, so that the failure names the page.
   */
  private readAll(step: FuzzStep): void {
    const mapping = this.mappingAt(num(step, 'slot'))!;
    const readable = (index: number): boolean => mapping.prot !== 'none' && this.pageState(mapping, index) === 'content';
    for (let index = 0; index < mapping.pages; ) {
      let end = index;
      while (end < mapping.pages && readable(end)) end++;
      if (end - index < 2 || !this.readRun(step, mapping, index, end)) {
        for (const each of end > index ? range(index, end) : [index]) this.readPage(step, mapping, each, 0, this.page, false);
      }
      index = Math.max(end, index + 1);
    }
  }

  /** Pages [from, to) of a mapping, all of which must show content, in one read: false if it faulted. */
  private readRun(step: FuzzStep, mapping: MappingModel, from: number, to: number): boolean {
    const got = attempt(() => this.system.readBytes(mapping.addr + BigInt(from * this.page), (to - from) * this.page));
    if (!('value' in got)) return false;
    for (let index = from; index < to; index++) {
      const offset = (index - from) * this.page;
      this.judgeBytes(step, mapping, index, 0, got.value.subarray(offset, offset + this.page));
    }
    return true;
  }

  private readPage(step: FuzzStep, mapping: MappingModel, index: number, at: number, length: number, forked: boolean): void {
    const addr = mapping.addr + BigInt(index * this.page + at);
    const got = attempt(() => (forked ? this.system.readInForkedChild(addr, length) : this.system.readBytes(addr, length)));
    const state = this.pageState(mapping, index);
    let allowed: readonly string[];
    let why: string;
    if (forked && got.code === 'ENOMEM' && this.forkMayFail()) return;
    if (forked && mapping.dontfork) [allowed, why] = [['SIGSEGV'], 'catalogue E2: MADV_DONTFORK, the child has no such mapping'];
    else if (mapping.prot === 'none') [allowed, why] = [['SIGSEGV'], 'PROT_NONE'];
    else if (state === 'fault') [allowed, why] = [FAULTS, 'catalogue A6, F1: a page past the region must fault'];
    else if (state === 'either') [allowed, why] = [['ok', ...FAULTS], 'catalogue F1: a page a grown mapping gained'];
    else [allowed, why] = [['ok'], 'a page of the region'];
    this.expect(step, got.code, allowed, `page ${index} of the mapping: ${why}`);
    if ('value' in got) this.judgeBytes(step, mapping, index, at, got.value);
  }

  /** Bytes read at `at` in page `index` of a mapping must be what the model says it shows. */
  private judgeBytes(step: FuzzStep, mapping: MappingModel, index: number, at: number, got: Uint8Array): void {
    const length = got.length;
    const want = this.pageBytes(mapping, index).subarray(at, at + length);
    if (!sameBytes(got, want)) {
      const source = mapping.copies.has(index) ? 'its private copy' : `region byte ${hex((mapping.firstPage + index) * this.page + at)}`;
      this.fail(step, `read ${length} bytes at page ${index} of the mapping unlike ${source}: ${firstDifference(got, want)}`);
    }
  }

  private write(step: FuzzStep): void {
    const mapping = this.mappingAt(num(step, 'slot'))!;
    const index = edge(step.page!, mapping.pages);
    const at = Math.min(edge(step.at!, this.page), this.page - 1);
    const length = Math.max(1, Math.min(num(step, 'len'), this.page - at));
    const data = stepBytes(num(step, 'byte'), length);
    const got = attempt(() => this.system.writeBytes(mapping.addr + BigInt(index * this.page + at), data));
    const state = this.pageState(mapping, index);
    if (mapping.prot !== 'rw') this.expect(step, got.code, ['SIGSEGV'], `a write to a ${mapping.prot === 'none' ? 'PROT_NONE' : 'PROT_READ'} mapping (catalogue B3)`);
    else this.expect(step, got.code, state === 'either' ? ['ok', ...FAULTS] : ['ok'], 'a write to a writable page of the region');
    if (got.code !== 'ok') return;
    this.touched.add(mapping.firstPage + index);
    if (mapping.shared) {
      this.device.set(data, (mapping.firstPage + index) * this.page + at);
    } else {
      // catalogue C2: the first write copies the page; the device keeps its bytes.
      const copy = mapping.copies.get(index) ?? this.pageBytes(mapping, index).slice();
      copy.set(data, at);
      mapping.copies.set(index, copy);
    }
  }

  // ------------------------------------------------------------- read() and write()

  /** A file position in the region, from a step's edge: 'first', 'last' byte, 'lastPage', 'end', or a number. */
  private position(step: FuzzStep): number {
    const pos = step.pos!;
    if (pos === 'lastPage') return this.target.size - this.page;
    return edge(pos, this.target.size);
  }

  private pread(step: FuzzStep): void {
    const { fd } = this.fdAt(num(step, 'fd'))!;
    const position = this.position(step);
    const length = num(step, 'len');
    const got = attempt(() => this.system.pread(fd, length, this.target.offset + position));
    if (position >= this.target.size) {
      this.expect(step, got.code, ['ok', ...PAST_END], 'read() at the end of the region');
      if ('value' in got && got.value.length !== 0) this.fail(step, `read() at the end of the region gave ${got.value.length} bytes`);
      return;
    }
    this.expect(step, got.code, ['ok'], 'read() inside the region');
    if (!('value' in got)) return;
    const most = Math.min(length, this.target.size - position);
    if (got.value.length === 0 || got.value.length > most) this.fail(step, `read() gave ${got.value.length} bytes, expected 1 to ${most}`);
    const want = this.device.subarray(position, position + got.value.length);
    if (!sameBytes(got.value, want)) this.fail(step, `read() at ${hex(position)} unlike the device: ${firstDifference(got.value, want)}`);
  }

  private pwrite(step: FuzzStep): void {
    const { fd, writable } = this.fdAt(num(step, 'fd'))!;
    const position = this.position(step);
    const data = stepBytes(num(step, 'byte'), num(step, 'len'));
    const got = attempt(() => this.system.pwrite(fd, data, this.target.offset + position));
    if (!writable) {
      this.expect(step, got.code, ['EBADF'], 'write() to an O_RDONLY fd');
      return;
    }
    const refusals = this.target.writable ? [] : WRITE_REFUSALS;
    if (position >= this.target.size) {
      this.expect(step, got.code, ['ok', ...PAST_END, ...refusals], 'write() at the end of the region');
      if ('value' in got && got.value !== 0) this.fail(step, `write() at the end of the region wrote ${got.value} bytes`);
      return;
    }
    this.expect(step, got.code, ['ok', ...refusals], 'write() inside the region');
    if (!('value' in got)) return;
    const most = Math.min(data.length, this.target.size - position);
    if (got.value === 0 || got.value > most) this.fail(step, `write() wrote ${got.value} bytes, expected 1 to ${most}`);
    this.device.set(data.subarray(0, got.value), position);
    for (let page = Math.floor(position / this.page); page * this.page < position + got.value; page++) this.touched.add(page);
  }

  /**
   * Catalogue E3: on x86 with PAT, fork fails with ENOMEM once a MAP_PRIVATE PFN mapping's first
   * page was copied on write (get_pat_info refuses a COW mapping in track_pfn_copy; 6.1 and 6.12).
   */
  private forkMayFail(): boolean {
    return this.mappings.some((mapping) => !mapping.shared && mapping.copies.has(0));
  }

  private forkExit(step: FuzzStep): void {
    const got = attempt(() => this.system.forkAndExit());
    this.expect(step, got.code, this.forkMayFail() ? ['ok', 'ENOMEM'] : ['ok'], 'fork and exit: every VMA copied and torn down (catalogue D3, E3)');
    if ('value' in got && got.value !== 0) this.fail(step, `the child exited with ${got.value}`);
  }

  // ------------------------------------------------------------- several threads, the module

  /**
   * Catalogue J7, taxonomy #19: threads fault distinct pages of fresh mappings at the same moment,
   * as the concurrency case "threads faulting distinct pages at the same moment each see their own
   * page" does, through the same call (the addon's raceFaults). The model first writes the
   * page-index pattern into the window through a shared mapping (region page p holds p in every
   * 8-byte word), so what it says each page holds is what raceFaults checks every page against.
   */
  private race(step: FuzzStep): void {
    const { c, page } = this.system;
    const workers = num(step, 'workers');
    // Several faults per worker and round: the more faults overlap, the likelier a racy ->fault shows.
    const pages = Math.min(this.regionPages, Math.max(RACE_PAGES_PER_WORKER * workers, num(step, 'len')));
    const first = Math.min(edge(step.off!, this.regionPages), this.regionPages - pages);
    const offset = BigInt(this.target.offset + first * page);
    const length = BigInt(pages * page);
    const pattern = pagePattern(first, pages, page);
    const opened = attempt(() => this.system.open(c.O_RDWR));
    this.expect(step, opened.code, ['ok'], 'an O_RDWR open of a writable device');
    const fd = (opened as { value: number }).value;
    try {
      const mapped = attempt(() => this.system.mmap(length, c.PROT_READ | c.PROT_WRITE, c.MAP_SHARED, fd, offset));
      this.expect(step, mapped.code, ['ok'], 'a shared writable mapping inside the region, to write the page-index pattern');
      const addr = (mapped as { value: bigint }).value;
      const wrote = attempt(() => this.system.writeBytes(addr, pattern));
      this.system.munmap(addr, length);
      this.expect(step, wrote.code, ['ok'], 'writing the page-index pattern through a shared writable mapping');
      this.device.set(pattern, first * page);
      for (const each of range(first, first + pages)) this.touched.add(each);
      // 'write': a locked add of 0, a write fault (do_shared_fault) that leaves the pattern as it is.
      const access = str(step, 'access') === 'write' ? 'write' : 'read';
      const replay = this.effort === 'replay';
      const options = {
        workers,
        processes: false,
        pages: 'distinct',
        access,
        firstIndex: first,
        rounds: RACE_ROUNDS,
        minOverlaps: replay ? RACE_REPLAY_MIN_OVERLAPS : RACE_MIN_OVERLAPS,
        timeLimitMs: replay ? RACE_REPLAY_TIME_LIMIT_MS : RACE_TIME_LIMIT_MS,
      } as const;
      const got = attempt(() => this.system.raceFaults(fd, offset, length, options));
      // A hang (ETIMEDOUT) or a worker killed by a signal is the driver's failure too. raceFaults forks its
      // workers' supervisor, so a fork the kernel refuses (catalogue E3) ends the step before any fault.
      const forkRefused = this.forkMayFail() && got.code === 'ENOMEM';
      this.expect(step, got.code, this.forkMayFail() ? ['ok', 'ENOMEM'] : ['ok'], 'threads first-touching a shared mapping inside the region (catalogue E3: its fork)');
      if (forkRefused) return;
      const { rounds, failed, workers: seen } = (got as { value: ReturnType<FuzzSystem['raceFaults']> }).value;
      const refused = seen.flatMap((worker, w) => worker.outcomes.map(({ op, code, count }) => `worker ${w} ${op} ${code} x${count}`));
      if (failed || refused.length > 0) this.fail(step, `a racing worker's mmap or munmap failed: ${refused.join(', ') || 'the rounds stopped'}`);
      if (rounds === 0) this.fail(step, 'no round of racing faults ran');
      const wrong = wrongPages(seen);
      if (wrong.length > 0) {
        // What comes after the colon differs from run to run (which round, which page): the part before it does not.
        this.fail(step, `threads faulting distinct pages at the same moment saw a page holding another page's index (catalogue J7, taxonomy #19): ${wrong.join('; ')}`);
      }
    } finally {
      this.system.close(fd);
    }
  }

  /**
   * Catalogue D1, D2: every fd is closed and the mappings outlive them, so only their file pins the module (fops.owner):
   * delete_module(O_NONBLOCK) must be refused, as the conformance lifetime case "the module cannot
   * be unloaded while a mapping outlives its fd" expects. An unload that succeeds leaves the
   * mappings pointing at freed memory and the file at the freed module's fops (taxonomy #8, #9):
   * they are left mapped for good (a munmap would oops in __fput), the module is loaded again so
   * that the fuzz can shrink the sequence, and the step fails.
   */
  private unload(step: FuzzStep): void {
    const module = this.target.module!;
    for (const fd of this.fds.splice(0)) this.expect(step, attempt(() => this.system.close(fd.fd)).code, ['ok'], 'close');
    const got = attempt(() => this.system.deleteModule(module.name));
    if (got.code !== 'ok') {
      this.expect(step, got.code, UNLOAD_REFUSALS, 'catalogue D2: the file a mapping holds pins the module');
      return;
    }
    const left = this.mappings.splice(0);
    this.abandoned.push(...left);
    let after = 'loaded again';
    try {
      this.system.loadModule(module.load);
    } catch (error) {
      this.gone = true;
      after = `not loaded again (${error instanceof Error ? error.message : String(error)}): the fuzz stops`;
    }
    this.fail(
      step,
      `delete_module(${module.name}, O_NONBLOCK) succeeded while ${left.length} mapping(s) outlived every fd; allowed: ${UNLOAD_REFUSALS.join(', ')} ` +
        `(catalogue D2: the file a mapping holds pins the module, fops.owner). The mappings are left mapped (their munmap would run freed module code); the module was ${after}`,
    );
  }

  /**
   * Every sequence starts with the device open twice, O_RDONLY and O_RDWR (where the profile
   * allows it), so that its first steps can map it; 'open' steps add more.
   */
  begin(): void {
    this.open({ op: 'open', rw: false });
    if (this.target.writable || this.target.readWrite) this.open({ op: 'open', rw: true });
  }

  /** Unmaps and closes everything this sequence left (a failure here fails the sequence). */
  release(): void {
    for (const mapping of this.mappings.splice(0)) this.system.munmap(mapping.addr, BigInt(mapping.pages * this.page));
    for (const { fd } of this.fds.splice(0)) this.system.close(fd);
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * Where a 'race' step may run: the concurrency cases write the page-index pattern through the device
 * itself or the profile's writer; the fuzz writes through the device only, so a writable one, with
 * two pages for two threads.
 */
export const canRace = (target: FuzzTarget, regionPages: number): boolean => target.writable && regionPages >= 2;

/** The page-index pattern over `pages` pages from region page `first`: every 8-byte word of page p holds p, as raceFaults checks. */
export function pagePattern(first: number, pages: number, page: number): Uint8Array {
  const bytes = new Uint8Array(pages * page);
  const view = new DataView(bytes.buffer);
  for (let offset = 0; offset < bytes.length; offset += 8) view.setBigUint64(offset, BigInt(first + Math.floor(offset / page)), true);
  return bytes;
}

/** "worker 1 round 3: region page 5 held 4 (512 words wrong)" for the first wrong pages racing workers saw. */
function wrongPages(workers: RaceWorker[]): string[] {
  const lines = workers.flatMap((worker, w) => worker.wrong.map((wrong) => `worker ${w} round ${wrong.round}: region page ${wrong.page} held ${wrong.seen} (${wrong.wrongWords} words wrong)`));
  const unlisted = workers.reduce((sum, worker) => sum + worker.wrongCount - worker.wrong.length, 0);
  const more = lines.length - Math.min(lines.length, 4) + unlisted;
  return more > 0 ? [...lines.slice(0, 4), `${more} more`] : lines;
}

function protBits(prot: Prot, c: FuzzSystem['c']): number {
  if (prot === 'none') return c.PROT_NONE;
  return prot === 'r' ? c.PROT_READ : c.PROT_READ | c.PROT_WRITE;
}

/**
 * A mapping length in bytes from a step's choice: a number of pages (1 to
 * MAX_MAP_PAGES), 'rest' (to the end of the region from the first page
 * mapped), 'past' (one page more), 'whole' (the region's size), 'zero', or
 * 'byte' (1 byte: one page once rounded up).
 */
export function mapLength(choice: FuzzStep[string], rest: number, regionPages: number, page: number): number {
  if (choice === 'zero') return 0;
  if (choice === 'byte') return 1;
  if (choice === 'rest') return Math.max(1, rest) * page;
  if (choice === 'past') return Math.max(1, rest + 1) * page;
  if (choice === 'whole') return regionPages * page;
  return Math.max(1, Math.min(Number(choice), MAX_MAP_PAGES)) * page;
}

/** Which part of a mapping a munmap step unmaps, given how many pages it has. */
function partOf(choice: string, pages: number): 'whole' | 'first' | 'last' | 'middle' {
  if (choice === 'middle' && pages >= 3) return 'middle';
  if ((choice === 'first' || choice === 'last') && pages >= 2) return choice;
  return 'whole';
}

/** Pages [from, to) of a mapping as a mapping of their own. */
function slice(mapping: MappingModel, from: number, to: number, page: number): MappingModel {
  const shift = <T>(entries: Iterable<[number, T]>): [number, T][] => [...entries].filter(([index]) => index >= from && index < to).map(([index, value]) => [index - from, value]);
  return {
    ...mapping,
    addr: mapping.addr + BigInt(from * page),
    pages: to - from,
    firstPage: mapping.firstPage + from,
    copies: new Map(shift(mapping.copies)),
    loose: new Set(shift([...mapping.loose].map((index) => [index, true] as [number, boolean])).map(([index]) => index)),
  };
}

/** A step as one line: its op and choices. */
export function describeStep(step: FuzzStep): string {
  const { op, ...rest } = step;
  return `${op}(${Object.entries(rest).map(([key, value]) => `${key}=${typeof value === 'string' ? value : String(value)}`).join(' ')})`;
}
