/**
 * What the scenario program (guest/scenario.ts) prints: one JSON object on its
 * last stdout line. Shared with the host (tools/trace/), which parses it.
 * Addresses and PFNs travel as hex strings ("0x7f..."), counts as numbers.
 */

export const SCENARIOS = ['map', 'touch', 'fork', 'mremap', 'munmap', 'private-write'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** The marker lines the scenario writes into the trace (trace_marker), parsed back by the host. */
export const MARKER_PREFIX = 'mmapkit:';

/** One page of a mapping as the driver and the kernel's page tables see it. */
export interface PageEvidence {
  index: number;
  /** MMAPKIT_IOC_PFN: the PFN the driver says backs this page (devices only). */
  driverPfn?: string;
  /** The raw /proc/self/pagemap entry, hex. */
  pagemap?: string;
  present?: boolean;
  file?: boolean;
  /** PFN from pagemap (0x0 when not present or hidden). */
  pagemapPfn?: string;
}

export interface MappingEvidence {
  /** The mapping's start, hex. */
  address: string;
  length: number;
  /** Its /proc/self/maps line. */
  mapsLine?: string;
  /** The VmFlags field of its smaps entry. */
  vmFlags?: string;
  /** Rss of its smaps entry, kB. */
  rssKb?: number;
  pages: PageEvidence[];
}

export interface TraceScenarioResult {
  kind: 'trace';
  pid: number;
  scenario: ScenarioName;
  target: string;
  /** 'remap' | 'fault' | 'ro' for a mmapkit device, 'file' otherwise. */
  targetKind: string;
  pageSize: number;
  pages: number;
  /** Did the main mmap/operation succeed? */
  ok: boolean;
  /** errno code when it did not (e.g. EINVAL for MAP_PRIVATE on the fault device). */
  error?: string;
  mapping?: MappingEvidence;
  /** Minor faults (getrusage) around the first touch of every page, when the scenario touches. */
  touchFaults?: number;
  /** The driver's faultsServed counter delta over the scenario, devices only. */
  driverFaults?: number;
  /** /proc/self/maps of the scenario process, taken while the mapping existed. */
  maps: string;
  notes: string[];
}

/** One target (a device or the tmpfs file) in the measure command. */
export interface TargetMeasurement {
  target: string;
  targetKind: string;
  pages: number;
  mapping: MappingEvidence;
  /** smaps VmFlags and maps line, taken while mapped. */
  /** Minor faults over the first touch of every page, and over a second pass. */
  firstTouchFaults: number;
  secondTouchFaults: number;
  /** The driver's faultsServed delta over the first touch (devices). */
  driverFaults?: number;
  /** mincore residency (pages resident) before and after the touch. */
  residentBefore: number;
  residentAfter: number;
  /** pagemap: pages present in the page tables before and after the touch. */
  presentBefore: number;
  presentAfter: number;
  /** mmap with a length that is not a page multiple. */
  unaligned: { length: number; ok: boolean; error?: string; vmaLength?: number };
  zeroLength: { ok: boolean; error?: string };
  /** The mapping still reads and writes after close(fd). */
  afterClose: { ok: boolean; error?: string };
  /** A forked child that maps the same object by path reads what the parent just wrote. */
  sharedChild: { ok: boolean; wrote: string; childRead?: string; error?: string };
  /** Two mappings in this process: same PFN (pagemap or driver ioctl) for page 0? */
  samePfnTwoMappings?: { first: string; second: string; source: string };
  /** After writing through the mapping: read() sees it before msync? msync(MS_SYNC) result. */
  writeBack: { readSeesBeforeMsync: boolean; msyncSync: string; msyncAsync: string };
  /** read() of the whole object vs access through the mapping. */
  copy: {
    bytes: number;
    readRcharDelta: number;
    readNs: number;
    mmapRcharDelta: number;
    mmapNs: number;
    rcharBaseline: number;
  };
  /** write() through the fd is visible in an existing mapping without a fault (files: the mapping is the page cache). */
  writeVisible: { ok: boolean; faults: number };
  /** Growth: only for files. */
  growth?: {
    initialPages: number;
    mappedPages: number;
    beforeGrow: string;
    afterGrowInside: string;
    afterGrowData: boolean;
    pastEof: string;
  };
  /** where the mapping landed: [heap] end, stack start, mapping start (hex). */
  layout: { heapEnd?: string; stackStart?: string; mapping: string };
  maps: string;
  notes: string[];
}

export interface MeasureResult {
  kind: 'measure';
  pid: number;
  pageSize: number;
  targets: TargetMeasurement[];
}
