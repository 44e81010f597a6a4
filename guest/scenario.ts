/**
 * The scenario program: runs in the guest as a process of its own, so that
 * ftrace can be limited to it (set_ftrace_pid), and prints one JSON line
 * (guest/scenario-types.ts) with what it saw. Bundled by `mmapkit build` to
 * build/guest/scenario.cjs and started by tools/trace/ through the agent.
 *
 *   scenario.cjs trace --scenario map|touch|fork|mremap|munmap|private-write --target PATH [--pages N] [--tracefs DIR]
 *   scenario.cjs measure --target PATH [--target PATH...] [--pages N]
 *
 * `trace` switches tracing on (tracing_on) only around the operation under
 * study, after writing its own pid into set_ftrace_pid and set_event_pid;
 * the host has set the tracer up beforehand (tools/trace/ftrace.ts). Marker
 * lines ("mmapkit: ...") go into the trace through trace_marker, so the host
 * can tell which faults hit the mapping.
 */
import { appendFileSync, closeSync, ftruncateSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type NativeAddon, decodePagemap, isNativeError, loadNative } from '../native/index.js';
import { ADDON_FILE } from '../native/location.js';
import { parseMaps, parseSmaps, vmaStartingAt } from './procfs.js';
import {
  MARKER_PREFIX,
  type MappingEvidence,
  type MeasureResult,
  type PageEvidence,
  SCENARIOS,
  type ScenarioName,
  type TargetMeasurement,
  type TraceScenarioResult,
} from './scenario-types.js';

const root = process.env.MMAPKIT_ROOT ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const native: NativeAddon = loadNative(path.join(root, ADDON_FILE));
const C = native.constants;
const PAGE = native.pageSize();
const hex = (value: bigint): string => `0x${value.toString(16)}`;

function errorCode(error: unknown): string {
  if (isNativeError(error)) return error.code;
  return error instanceof Error ? error.message : String(error);
}

function attempt<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: string } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error: errorCode(error) };
  }
}

/** 'remap' | 'fault' | 'ro' for a mmapkit device, 'file' for anything else. */
function kindOf(fd: number): string {
  const info = attempt(() => native.deviceInfo(fd));
  return info.ok ? info.value.kind : 'file';
}

// ---------------------------------------------------------------- ftrace

class Tracer {
  constructor(private readonly dir: string | undefined) {}

  private write(file: string, value: string, append = false): void {
    if (this.dir === undefined) return;
    const target = path.join(this.dir, file);
    if (append) appendFileSync(target, value);
    else writeFileSync(target, value);
  }

  /** Limits tracing to this process, then switches the ring buffer on. */
  start(label: string): void {
    this.write('set_ftrace_pid', String(process.pid));
    this.write('set_event_pid', String(process.pid));
    this.write('tracing_on', '1');
    this.on = true;
    this.mark(`begin ${label}`);
  }

  /** trace_marker only accepts writes while tracing is on (EBADF otherwise). */
  mark(text: string): void {
    this.write('trace_marker', `${MARKER_PREFIX} ${text}`, true);
  }

  private on = false;

  stop(): void {
    if (!this.on) return;
    this.mark('end');
    this.write('tracing_on', '0');
    this.on = false;
  }
}

// ---------------------------------------------------------------- evidence

function pageEvidence(fd: number, kind: string, address: bigint, pages: number, pgoff = 0): PageEvidence[] {
  const result: PageEvidence[] = [];
  for (let index = 0; index < pages; index++) {
    const page: PageEvidence = { index };
    if (kind !== 'file') {
      const pfn = attempt(() => native.pagePfn(fd, BigInt(pgoff + index)));
      if (pfn.ok) page.driverPfn = hex(pfn.value);
    }
    const raw = attempt(() => native.pagemap(address + BigInt(index * PAGE)));
    if (raw.ok) {
      const entry = decodePagemap(raw.value);
      page.pagemap = hex(raw.value);
      page.present = entry.present;
      page.file = entry.file;
      page.pagemapPfn = hex(entry.pfn);
    }
    result.push(page);
  }
  return result;
}

/** The mapping at `address` as this process's smaps (its maps line included) and pagemap show it. */
function mappingEvidence(fd: number, kind: string, address: bigint, length: number): MappingEvidence {
  const vma = vmaStartingAt(parseSmaps(readFileSync('/proc/self/smaps', 'utf8')), address);
  const vmFlags = vma?.fields.get('VmFlags');
  return {
    address: hex(address),
    length,
    mapsLine: vma?.line,
    ...(vma !== undefined && vma.rss >= 0 && { rssKb: vma.rss }),
    ...(vmFlags !== undefined && { vmFlags }),
    pages: pageEvidence(fd, kind, address, Math.ceil(length / PAGE)),
  };
}

function touchAll(address: bigint, pages: number, access: 'read' | 'write' = 'read'): number {
  const before = native.minorFaults();
  for (let i = 0; i < pages; i++) native.probe(address + BigInt(i * PAGE), access);
  return Number(native.minorFaults() - before);
}

function driverFaults(fd: number, kind: string): number | undefined {
  if (kind === 'file') return undefined;
  return Number(native.deviceStats(fd).faultsServed);
}

// ---------------------------------------------------------------- trace

function runTrace(scenario: ScenarioName, target: string, pages: number, tracefs: string | undefined): TraceScenarioResult {
  const tracer = new Tracer(tracefs);
  const readOnly = target.endsWith('-ro');
  const fd = native.open(target, readOnly ? C.O_RDONLY : C.O_RDWR);
  const kind = kindOf(fd);
  const length = pages * PAGE;
  const prot = kind === 'ro' ? C.PROT_READ : C.PROT_READ | C.PROT_WRITE;
  const result: TraceScenarioResult = {
    kind: 'trace',
    pid: process.pid,
    scenario,
    target,
    targetKind: kind,
    pageSize: PAGE,
    pages,
    ok: true,
    maps: '',
    notes: [],
  };
  const faultsBefore = driverFaults(fd, kind);
  const map = (flags = C.MAP_SHARED): bigint => native.mmap(0n, BigInt(length), prot, flags, fd, 0n);
  const markMapped = (address: bigint): void => tracer.mark(`mapped ${hex(address)} ${length}`);
  let address: bigint | undefined;
  try {
    switch (scenario) {
      case 'map':
        tracer.start(scenario);
        address = map();
        markMapped(address);
        tracer.stop();
        break;
      case 'touch': {
        tracer.start(scenario);
        address = map();
        markMapped(address);
        tracer.mark('touch');
        result.touchFaults = touchAll(address, pages);
        tracer.stop();
        break;
      }
      case 'fork':
        address = map();
        touchAll(address, pages);
        tracer.start(scenario);
        markMapped(address);
        native.forkAndExit();
        tracer.stop();
        break;
      case 'mremap': {
        address = map();
        touchAll(address, pages);
        // A free place to move to: reserve it, then move onto it.
        const spot = native.mmap(0n, BigInt(length), C.PROT_NONE, C.MAP_PRIVATE | C.MAP_ANONYMOUS, -1, 0n);
        tracer.start(scenario);
        markMapped(address);
        const moved = native.mremap(address, BigInt(length), BigInt(length), C.MREMAP_MAYMOVE | C.MREMAP_FIXED, spot);
        tracer.mark(`moved ${hex(moved)} ${length}`);
        tracer.stop();
        result.notes.push(`mremap moved the mapping from ${hex(address)} to ${hex(moved)}`);
        address = moved;
        break;
      }
      case 'munmap': {
        address = map();
        touchAll(address, pages);
        result.mapping = mappingEvidence(fd, kind, address, length);
        result.maps = readFileSync('/proc/self/maps', 'utf8');
        tracer.start(scenario);
        markMapped(address);
        native.munmap(address, BigInt(length));
        tracer.stop();
        address = undefined;
        break;
      }
      case 'private-write': {
        tracer.start(scenario);
        try {
          address = map(C.MAP_PRIVATE);
          markMapped(address);
          tracer.mark('touch');
          result.touchFaults = touchAll(address, 1, 'write');
        } finally {
          tracer.stop();
        }
        break;
      }
    }
  } catch (error) {
    tracer.stop();
    result.ok = false;
    result.error = errorCode(error);
  }
  if (address !== undefined) {
    result.mapping = mappingEvidence(fd, kind, address, length);
    result.maps = readFileSync('/proc/self/maps', 'utf8');
  }
  const faultsAfter = driverFaults(fd, kind);
  if (faultsBefore !== undefined && faultsAfter !== undefined) result.driverFaults = faultsAfter - faultsBefore;
  return result;
}

// ---------------------------------------------------------------- measure

function rchar(): number {
  const match = /^rchar:\s+(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'));
  return match ? Number(match[1]) : NaN;
}

function residentPages(address: bigint, length: number): number {
  const vector = attempt(() => native.mincore(address, BigInt(length)));
  return vector.ok ? [...vector.value].filter((byte) => (byte & 1) === 1).length : -1;
}

function presentPages(address: bigint, pages: number): number {
  let present = 0;
  for (let i = 0; i < pages; i++) {
    const raw = attempt(() => native.pagemap(address + BigInt(i * PAGE)));
    if (raw.ok && decodePagemap(raw.value).present) present++;
  }
  return present;
}

const pattern = (seed: number, length: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (seed + i * 7) & 0xff));

/**
 * One target of `measure`, open, with the mapping of its first `pages` pages
 * that the experiments below share. They run in the order measureTarget
 * calls them: each writes to its own page of that mapping.
 */
interface Subject {
  target: string;
  fd: number;
  kind: string;
  writable: boolean;
  pages: number;
  length: number;
  /** The shared MAP_SHARED mapping of `length` bytes at offset 0. */
  address: bigint;
  /** A new mapping at offset 0 with the target's protection. */
  map(length: number, flags?: number, fd?: number): bigint;
  /** What the experiments want a reader to know. */
  notes: string[];
}

type DemandPaging = Pick<
  TargetMeasurement,
  'firstTouchFaults' | 'secondTouchFaults' | 'driverFaults' | 'residentBefore' | 'residentAfter' | 'presentBefore' | 'presentAfter'
>;

/** Maps the target and touches every page twice: what is resident and present before and after the first touch. */
function demandPaging(subject: Omit<Subject, 'address'>): { address: bigint; paging: DemandPaging } {
  const { fd, kind, length, pages } = subject;
  const faultsBefore = driverFaults(fd, kind);
  const address = subject.map(length);
  const residentBefore = residentPages(address, length);
  const presentBefore = presentPages(address, pages);
  const firstTouchFaults = touchAll(address, pages);
  const secondTouchFaults = touchAll(address, pages);
  const faultsAfter = driverFaults(fd, kind);
  const paging: DemandPaging = {
    firstTouchFaults,
    secondTouchFaults,
    ...(faultsBefore !== undefined && faultsAfter !== undefined && { driverFaults: faultsAfter - faultsBefore }),
    residentBefore,
    residentAfter: residentPages(address, length),
    presentBefore,
    presentAfter: presentPages(address, pages),
  };
  return { address, paging };
}

/** Where the mapping landed: the end of [heap] and the start of [stack] around it. */
function layoutOf(maps: string, address: bigint): TargetMeasurement['layout'] {
  const entries = parseMaps(maps);
  const heap = entries.find((entry) => entry.path === '[heap]');
  const stack = entries.find((entry) => entry.path === '[stack]');
  return {
    ...(heap !== undefined && { heapEnd: hex(heap.end) }),
    ...(stack !== undefined && { stackStart: hex(stack.start) }),
    mapping: hex(address),
  };
}

/** mmap with a length that is not a page multiple: refused, or how long a vma it made. */
function unalignedLength({ map }: Subject): TargetMeasurement['unaligned'] {
  const length = PAGE + 1;
  const unaligned: TargetMeasurement['unaligned'] = { length, ok: false };
  const odd = attempt(() => map(length));
  if (!odd.ok) return { ...unaligned, error: odd.error };
  unaligned.ok = true;
  const vma = vmaStartingAt(parseMaps(readFileSync('/proc/self/maps', 'utf8')), odd.value);
  if (vma !== undefined) unaligned.vmaLength = Number(vma.end - vma.start);
  native.munmap(odd.value, BigInt(length));
  return unaligned;
}

function zeroLength({ map }: Subject): TargetMeasurement['zeroLength'] {
  const zero = attempt(() => map(0));
  return zero.ok ? { ok: true } : { ok: false, error: zero.error };
}

/** The same object in a second process: written here (read, on a read-only device), read there at once. */
function sharedWithChild({ target, address, writable, notes }: Subject): TargetMeasurement['sharedChild'] {
  const wrote = writable ? pattern(0x31, 32) : native.readBytes(address, 32);
  if (writable) native.writeBytes(address, wrote);
  else notes.push('read-only device: the child compared what both processes read');
  const sharedChild: TargetMeasurement['sharedChild'] = { ok: false, wrote: wrote.toString('hex') };
  const child = attempt(() => native.readInChild(target, 0n, wrote.length));
  if (child.ok) {
    sharedChild.childRead = child.value.toString('hex');
    sharedChild.ok = child.value.equals(wrote);
  } else sharedChild.error = child.error;
  return sharedChild;
}

/** Two mappings of the same object in this process: the same page frame? */
function samePfnTwoMappings({ address, fd, kind, map }: Subject): TargetMeasurement['samePfnTwoMappings'] {
  const second = attempt(() => map(PAGE));
  if (!second.ok) return undefined;
  let same: TargetMeasurement['samePfnTwoMappings'];
  native.probe(second.value, 'read');
  const a = decodePagemap(native.pagemap(address));
  const b = decodePagemap(native.pagemap(second.value));
  if (a.present && b.present) same = { first: hex(a.pfn), second: hex(b.pfn), source: 'pagemap' };
  else if (kind !== 'file') {
    const pfn = hex(native.pagePfn(fd, 0n));
    same = { first: pfn, second: pfn, source: 'driver ioctl (pagemap hides VM_PFNMAP pages, catalogue H3)' };
  }
  native.munmap(second.value, BigInt(PAGE));
  return same;
}

/** A write through the mapping (page 1), then read() through an fd, then msync. */
function writeBack({ target, address, length, writable }: Subject): TargetMeasurement['writeBack'] {
  const result = { readSeesBeforeMsync: false, msyncSync: 'n/a', msyncAsync: 'n/a' };
  if (!writable) return result;
  const marker = pattern(0x77, 16);
  native.writeBytes(address + BigInt(PAGE), marker);
  const viaRead = Buffer.alloc(16);
  const posixFd = openSync(target, 'r');
  readSync(posixFd, viaRead, 0, 16, PAGE);
  closeSync(posixFd);
  result.readSeesBeforeMsync = viaRead.equals(marker);
  const sync = attempt(() => native.msync(address, BigInt(length), C.MS_SYNC));
  result.msyncSync = sync.ok ? 'ok' : sync.error;
  const async = attempt(() => native.msync(address, BigInt(length), C.MS_ASYNC));
  result.msyncAsync = async.ok ? 'ok' : async.error;
  return result;
}

/** Copies: read() of the whole object vs access through the mapping (rchar counts what the kernel copied). */
function copyCost({ target, address, length, notes }: Subject): TargetMeasurement['copy'] {
  const base0 = rchar();
  const rcharBaseline = rchar() - base0;
  const buffer = Buffer.alloc(length);
  const readFd = openSync(target, 'r');
  const r0 = rchar();
  let t0 = process.hrtime.bigint();
  for (let done = 0; done < length; ) done += readSync(readFd, buffer, done, length - done, done);
  const readNs = Number(process.hrtime.bigint() - t0);
  const readRcharDelta = rchar() - r0 - rcharBaseline;
  closeSync(readFd);
  const m0 = rchar();
  t0 = process.hrtime.bigint();
  const viaMap = native.readBytes(address, length);
  const mmapNs = Number(process.hrtime.bigint() - t0);
  const mmapRcharDelta = rchar() - m0 - rcharBaseline;
  if (!viaMap.equals(buffer)) notes.push('read() and the mapping returned different bytes');
  return { bytes: length, readRcharDelta, readNs, mmapRcharDelta, mmapNs, rcharBaseline };
}

/** write() through an fd (page 2) shows in the existing mapping, and with how many faults. */
function writeVisible({ target, address, writable }: Subject): TargetMeasurement['writeVisible'] {
  const result = { ok: false, faults: 0 };
  if (!writable) return result;
  const fresh = pattern(0x5c, 16);
  const posixFd = openSync(target, 'r+');
  writeSync(posixFd, fresh, 0, fresh.length, 2 * PAGE);
  closeSync(posixFd);
  const f0 = native.minorFaults();
  const seen = native.readBytes(address + BigInt(2 * PAGE), 16);
  result.faults = Number(native.minorFaults() - f0);
  result.ok = seen.equals(fresh);
  return result;
}

/** A mapping made through an fd that is then closed still reads (and writes). */
function mappingOutlivesFd({ target, writable, map }: Subject): TargetMeasurement['afterClose'] {
  const closeFd = native.open(target, writable ? C.O_RDWR : C.O_RDONLY);
  const late = map(PAGE, C.MAP_SHARED, closeFd);
  native.close(closeFd);
  const afterCloseTry = attempt(() => {
    native.readBytes(late, 16);
    if (writable) native.writeBytes(late + 64n, Buffer.from('after-close'));
  });
  native.munmap(late, BigInt(PAGE));
  return afterCloseTry.ok ? { ok: true } : { ok: false, error: afterCloseTry.error };
}

/** A one-page file mapped three pages long, grown by a page while mapped: only a file can grow. */
function fileGrowth({ target }: Subject): NonNullable<TargetMeasurement['growth']> {
  const small = `${target}.grow`;
  writeFileSync(small, pattern(0x11, PAGE));
  const growFd = native.open(small, C.O_RDWR);
  const grown = native.mmap(0n, BigInt(3 * PAGE), C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, growFd, 0n);
  const beforeGrow = native.probe(grown + BigInt(PAGE), 'read');
  appendFileSync(small, Buffer.alloc(PAGE, 0x5a));
  const afterGrowInside = native.probe(grown + BigInt(PAGE), 'read');
  const data = attempt(() => native.readBytes(grown + BigInt(PAGE), 16));
  const pastEof = native.probe(grown + BigInt(2 * PAGE), 'read');
  native.munmap(grown, BigInt(3 * PAGE));
  native.close(growFd);
  return {
    initialPages: 1,
    mappedPages: 3,
    beforeGrow,
    afterGrowInside,
    afterGrowData: data.ok && data.value.every((byte) => byte === 0x5a),
    pastEof,
  };
}

function measureTarget(target: string, pages: number): TargetMeasurement {
  const fd = native.open(target, C.O_RDWR);
  const kind = kindOf(fd);
  const writable = kind !== 'ro';
  const prot = writable ? C.PROT_READ | C.PROT_WRITE : C.PROT_READ;
  const map = (len: number, flags = C.MAP_SHARED, file = fd): bigint => native.mmap(0n, BigInt(len), prot, flags, file, 0n);
  const opened = { target, fd, kind, writable, pages, length: pages * PAGE, map, notes: [] };
  const { address, paging } = demandPaging(opened);
  const subject: Subject = { ...opened, address };
  const mapping = mappingEvidence(fd, kind, address, subject.length);
  const maps = readFileSync('/proc/self/maps', 'utf8');
  const layout = layoutOf(maps, address);
  const unaligned = unalignedLength(subject);
  const zero = zeroLength(subject);
  const sharedChild = sharedWithChild(subject);
  const samePfn = samePfnTwoMappings(subject);
  const written = writeBack(subject);
  const copy = copyCost(subject);
  const visible = writeVisible(subject);
  const afterClose = mappingOutlivesFd(subject);
  const growth = kind === 'file' ? fileGrowth(subject) : undefined;
  native.munmap(address, BigInt(subject.length));
  native.close(fd);
  return {
    target,
    targetKind: kind,
    pages,
    mapping,
    ...paging,
    unaligned,
    zeroLength: zero,
    afterClose,
    sharedChild,
    ...(samePfn !== undefined && { samePfnTwoMappings: samePfn }),
    writeBack: written,
    copy,
    writeVisible: visible,
    ...(growth !== undefined && { growth }),
    layout,
    maps,
    notes: subject.notes,
  };
}

/** A regular file of `pages` pages (on the guest's tmpfs when under /tmp). */
function createFile(target: string, pages: number): void {
  const fd = openSync(target, 'w');
  ftruncateSync(fd, 0);
  writeSync(fd, pattern(0x41, pages * PAGE));
  closeSync(fd);
}

function measure(targets: string[], pages: number): MeasureResult {
  const measured: TargetMeasurement[] = [];
  for (const target of targets) {
    if (!target.startsWith('/dev/')) createFile(target, pages);
    measured.push(measureTarget(target, pages));
  }
  return { kind: 'measure', pid: process.pid, pageSize: PAGE, targets: measured };
}

// ---------------------------------------------------------------- main

function main(): void {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      scenario: { type: 'string' },
      target: { type: 'string', multiple: true },
      pages: { type: 'string', default: '4' },
      tracefs: { type: 'string' },
      /** Create the target (a regular file) with `pages` pages of data first. */
      create: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const pages = Number(values.pages);
  const targets = values.target ?? [];
  if (!Number.isInteger(pages) || pages < 1) throw new Error(`--pages takes a positive integer, not ${String(values.pages)}`);
  if (values.create) for (const target of targets) createFile(target, pages);
  let output: unknown;
  if (command === 'trace') {
    const scenario = values.scenario as ScenarioName;
    if (!SCENARIOS.includes(scenario)) throw new Error(`--scenario takes ${SCENARIOS.join('|')}`);
    if (targets.length !== 1) throw new Error('trace takes one --target');
    output = runTrace(scenario, targets[0]!, pages, values.tracefs);
  } else if (command === 'measure') {
    output = measure(targets, pages);
  } else {
    throw new Error('usage: scenario.cjs trace|measure ...');
  }
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`scenario: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
