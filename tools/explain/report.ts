/**
 * The `mmapkit explain` report: the mmap path walked step by step in the
 * order the articles tell it, each step with the live evidence of this run
 * (kernel functions from the traces, maps/smaps, PFNs, fault counts), the
 * address-space picture and the claims table. Built once as a model, then
 * rendered as terminal text here and as HTML in html.ts.
 */
import type { MeasureResult, TargetMeasurement, TraceScenarioResult } from '../../guest/scenario-types.js';
import { parseMaps } from '../../guest/procfs.js';
import { type Region, asciiPicture, placement, regionsOf } from './address-space.js';
import { type ClaimRow, demandFaults, evaluateClaims, mmapHooks } from './claims.js';
import { type GraphNode, parseFunctionGraph, walk } from '../trace/graph.js';
import { type TraceAnalysis, analyseTrace, formatUs, renderTree, trimTree } from '../trace/tree.js';
import { decodeVmFlags, setByFor } from '../trace/vmflags.js';

export interface RecordedTrace {
  raw: string;
  result: TraceScenarioResult;
  /** Where the raw trace was saved, for the reader. */
  path?: string;
}

export interface ExplainEvidence {
  /** The device under study (a path). */
  device: string;
  /** The regular file on the guest's tmpfs. */
  file: string;
  kernel: string;
  /** The touch scenario traced on the device and on the file. */
  deviceTrace: RecordedTrace;
  fileTrace: RecordedTrace;
  measure: MeasureResult;
  /** When the run happened (ISO). */
  when: string;
}

export interface StepFunction {
  name: string;
  module?: string;
  durationUs?: number;
  /** 'device' or 'file': which trace it was seen in. */
  seenIn: string;
}

export interface ReportStep {
  title: string;
  /** What the articles say happens here, in our words. */
  story: string;
  functions: StepFunction[];
  /** Lines of evidence text (terminal); the HTML uses the structured fields too. */
  evidence: string[];
  /** Trimmed call trees that belong to this step. */
  trees: { title: string; lines: string[] }[];
}

export interface ReportModel {
  title: string;
  evidence: ExplainEvidence;
  device: TargetMeasurement;
  file: TargetMeasurement;
  all: TargetMeasurement[];
  deviceTrace: TraceAnalysis;
  fileTrace: TraceAnalysis;
  regions: Region[];
  steps: ReportStep[];
  claims: ClaimRow[];
}

const STEP_FUNCTIONS: Record<string, string[]> = {
  free: ['get_unmapped_area', 'shmem_get_unmapped_area', 'arch_get_unmapped_area_topdown', 'vm_unmapped_area'],
  vma: ['do_mmap', 'mmap_region', 'vm_area_alloc'],
  link: ['vma_mas_store', 'vma_link', 'vma_link_file', 'vma_interval_tree_insert'],
  hook: ['mmap_file', 'call_mmap', 'shmem_mmap', '__mmap_region'],
  tables: ['remap_pfn_range', 'track_pfn_remap', 'remap_pfn_range_internal', 'vma_set_page_prot'],
  fault: ['handle_mm_fault', '__handle_mm_fault', 'do_fault', '__do_fault', 'vmf_insert_pfn', 'vmf_insert_pfn_prot', 'insert_pfn', 'filemap_map_pages', 'filemap_fault', 'shmem_fault', 'do_set_pte'],
  writeback: ['vfs_fsync_range'],
};

/** Where the functions of a step were seen: first occurrence of each in the mmap syscall and the first fault on the mapping. */
function functionsFor(names: string[], analyses: [string, TraceAnalysis][], moduleHooks: boolean, faults: boolean): StepFunction[] {
  const found: StepFunction[] = [];
  for (const [seenIn, analysis] of analyses) {
    const roots: GraphNode[] = faults
      ? analysis.faults.filter((fault) => fault.inMapping).slice(0, 1).map((fault) => fault.node)
      : analysis.syscalls.filter((call) => call.node.name === '__x64_sys_mmap').map((call) => call.node);
    for (const root of roots) {
      const hooks = faults ? [] : mmapHooks(root);
      for (const { node, path } of walk(root)) {
        const parent = path[path.length - 1];
        const isHook = moduleHooks && node.module !== undefined && (hooks.includes(node) || parent?.module !== undefined);
        const isFaultHook = faults && node.module !== undefined;
        if (!names.includes(node.name) && !isHook && !isFaultHook) continue;
        if (found.some((f) => f.name === node.name && f.seenIn === seenIn)) continue;
        found.push({ name: node.name, ...(node.module !== undefined && { module: node.module }), ...(node.durationUs !== undefined && { durationUs: node.durationUs }), seenIn });
      }
    }
  }
  return found;
}

const mapsLine = (m: TargetMeasurement): string => m.mapping.mapsLine ?? '(not found in /proc/self/maps)';

function firstFaultTree(analysis: TraceAnalysis): string[] | undefined {
  const fault = analysis.faults.find((each) => each.inMapping);
  if (fault === undefined) return undefined;
  const trimmed = trimTree(fault.node);
  return trimmed === undefined ? undefined : renderTree(trimmed);
}

function mmapTree(analysis: TraceAnalysis): string[] | undefined {
  const call = analysis.syscalls.find((each) => each.node.name === '__x64_sys_mmap');
  const trimmed = call === undefined ? undefined : trimTree(call.node);
  return trimmed === undefined ? undefined : renderTree(trimmed);
}

export function buildReport(evidence: ExplainEvidence): ReportModel {
  const all = evidence.measure.targets;
  const device = all.find((m) => m.target === evidence.device);
  const file = all.find((m) => m.target === evidence.file);
  if (device === undefined || file === undefined) throw new Error('the measurements lack the device or the file');
  const others = all.filter((m) => m !== device && m !== file);
  const deviceTrace = analyseTrace(parseFunctionGraph(evidence.deviceTrace.raw));
  const fileTrace = analyseTrace(parseFunctionGraph(evidence.fileTrace.raw));
  const analyses: [string, TraceAnalysis][] = [
    ['device', deviceTrace],
    ['file', fileTrace],
  ];
  const regions = regionsOf(parseMaps(device.maps), BigInt(device.mapping.address));
  const where = placement(regions);
  const kind = device.targetKind;

  const steps: ReportStep[] = [];
  steps.push({
    title: '1. Find a free address range',
    story: 'mmap() asks get_unmapped_area for a gap big enough for the length; on x86-64 the search runs top-down from below the stack (mmap_base).',
    functions: functionsFor(STEP_FUNCTIONS.free!, analyses, false, false),
    evidence: [
      `the device mapping landed at ${device.mapping.address}` +
        (where.below !== undefined ? `, just above ${where.below.label}` : '') +
        (where.above !== undefined ? `, just below ${where.above.label}` : '') +
        `; between the heap and the stack: ${where.betweenHeapAndStack ? 'yes' : 'no'}`,
      ...asciiPicture(regions),
    ],
    trees: [],
  });
  steps.push({
    title: '2. Create the VMA',
    story: 'mmap_region allocates a vm_area_struct for [start, start+length) with the flags computed from prot and flags.',
    functions: functionsFor(STEP_FUNCTIONS.vma!, analyses, false, false),
    evidence: [`/proc/PID/maps: ${mapsLine(device)}`, `/proc/PID/maps: ${mapsLine(file)}`],
    trees: [],
  });
  steps.push({
    title: "3. Link it into the process's tree",
    story: "The VMA goes into the process's VMA tree (a maple tree on 6.1, vma_mas_store) and into the file's i_mmap interval tree, which lets the kernel find every mapping of the object.",
    functions: functionsFor(STEP_FUNCTIONS.link!, analyses, false, false),
    evidence: [],
    trees: [],
  });
  const flags = decodeVmFlags(device.mapping.vmFlags ?? '');
  steps.push({
    title: "4. Call the driver's mmap",
    story: "mmap_file calls the file's ->mmap (file_operations.mmap) with the new VMA (on 6.12 mmap_file is inline, so the hook is called from __mmap_region); the driver checks the range and sets its flags and vm_ops.",
    functions: functionsFor(STEP_FUNCTIONS.hook!, analyses, true, false),
    evidence: [
      `smaps VmFlags of the device mapping: ${device.mapping.vmFlags ?? '?'}`,
      ...flags.map((flag) => `  ${flag.letters}  ${flag.flag.padEnd(22)} ${flag.meaning}; set by ${setByFor(flag.letters, kind)}`),
      `smaps VmFlags of the tmpfs mapping: ${file.mapping.vmFlags ?? '?'}`,
    ],
    trees: [{ title: `mmap() of ${evidence.device}`, lines: mmapTree(deviceTrace) ?? ['(no mmap graph in the trace)'] }],
  });
  const pfnRows = device.mapping.pages.map(
    (page) =>
      `  page ${page.index}: driver PFN ${page.driverPfn ?? '?'}; pagemap ${page.present === true ? `present, PFN ${page.pagemapPfn ?? '?'}` : 'not present, PFN hidden'} (raw ${page.pagemap ?? '?'})`,
  );
  steps.push({
    title: '5. Build page tables',
    story: 'A remap driver writes every PTE now with remap_pfn_range; a fault driver writes none and waits for the first access.',
    functions: functionsFor(STEP_FUNCTIONS.tables!, analyses, false, false),
    evidence: [
      `${kind} device, after the touch (${device.pages} pages): the PFN the driver says backs each page (MMAPKIT_IOC_PFN) vs /proc/PID/pagemap:`,
      ...pfnRows,
      'pagemap never shows VM_PFNMAP pages (catalogue H3: the walk skips PFNMAP VMAs), so the driver ioctl is the only source of the PFN here.',
      `tmpfs file: pagemap PFNs ${file.mapping.pages.map((page) => page.pagemapPfn ?? '?').join(' ')} (present ${file.mapping.pages.filter((page) => page.present === true).length}/${file.pages}, file pages)`,
    ],
    trees: [],
  });
  const faultRows = all.map(
    (m) =>
      `  ${(m.targetKind === 'file' ? 'tmpfs file' : `${m.targetKind} device`).padEnd(14)} first touch of ${m.pages} pages: ${m.firstTouchFaults} minor faults (getrusage), second touch: ${m.secondTouchFaults}` +
        (m.driverFaults !== undefined ? `, driver faults_served +${m.driverFaults}` : '') +
        `; counted as demand faults: ${demandFaults(m)}`,
  );
  const faultTrees: ReportStep['trees'] = [];
  const deviceFault = firstFaultTree(deviceTrace);
  faultTrees.push({
    title: `first fault on ${evidence.device}`,
    lines: deviceFault ?? [`no fault on the mapping: touching all ${evidence.deviceTrace.result.pages} pages entered no fault handler`],
  });
  const fileFault = firstFaultTree(fileTrace);
  if (fileFault !== undefined) faultTrees.push({ title: `first fault on the tmpfs file`, lines: fileFault });
  steps.push({
    title: '6. Fault on access',
    story: 'The first access to a page without a PTE traps; handle_mm_fault finds the VMA and, for a file VMA, asks vm_ops->fault (or maps pages already in the page cache around the address).',
    functions: functionsFor(STEP_FUNCTIONS.fault!, analyses, false, true),
    evidence: faultRows,
    trees: faultTrees,
  });
  steps.push({
    title: '7. Write back',
    story: 'Writes through a shared file mapping dirty page-cache pages, which writeback or msync() flushes to storage; a device mapping has nothing to write back.',
    functions: functionsFor(STEP_FUNCTIONS.writeback!, analyses, false, false),
    evidence: all.map(
      (m) =>
        `  ${(m.targetKind === 'file' ? 'tmpfs file' : `${m.targetKind} device`).padEnd(14)} read() saw the mapping's write ${m.writeBack.readSeesBeforeMsync ? 'at once, before msync' : 'not before msync'}; msync(MS_SYNC) → ${m.writeBack.msyncSync}, msync(MS_ASYNC) → ${m.writeBack.msyncAsync}`,
    ),
    trees: [],
  });

  const claims = evaluateClaims({ device, file, others, deviceTrace, fileTrace });
  return {
    title: `mmapkit explain: the mmap path of ${evidence.device} on ${evidence.kernel}`,
    evidence,
    device,
    file,
    all,
    deviceTrace,
    fileTrace,
    regions,
    steps,
    claims,
  };
}

export function renderText(model: ReportModel): string {
  const out: string[] = [model.title, ''];
  for (const step of model.steps) {
    out.push(step.title, `  ${step.story}`);
    if (step.functions.length > 0) {
      out.push(`  kernel functions seen: ${step.functions.map((f) => `${f.name}${f.module !== undefined ? ` [${f.module}]` : ''} (${f.seenIn}${f.durationUs !== undefined ? `, ${formatUs(f.durationUs)}` : ''})`).join(', ')}`);
    } else out.push('  kernel functions seen: none in this run');
    for (const line of step.evidence) out.push(`  ${line}`);
    for (const tree of step.trees) out.push(`  ${tree.title}:`, ...tree.lines.map((line) => `    ${line}`));
    out.push('');
  }
  out.push('Claims checked (device: ' + model.evidence.device + ', file: ' + model.evidence.file + ')');
  for (const claim of model.claims) {
    out.push(`  [${claim.verdict}] ${claim.claim}`, `      ${claim.observed}`);
  }
  return `${out.join('\n')}\n`;
}
