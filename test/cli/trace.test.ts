/**
 * `mmapkit trace` and `mmapkit explain` in a real guest, run as a user runs
 * them: each case boots its own VM, and checks the saved raw trace with the
 * parser, not only the text.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../scratch-dir.js';
import { REPO_ROOT } from '../../tools/paths.js';
import { type CliResult as Run, runCli as command } from './run-cli.js';
import { demandFaults } from '../../tools/explain/claims.js';
import { namesIn, parseFunctionGraph } from '../../tools/trace/graph.js';
import type { ExplainEvidence } from '../../tools/explain/report.js';
import { analyseTrace, callPath } from '../../tools/trace/tree.js';

const rawTraceOf = (run: Run): string => {
  const file = /raw trace: (\S+)/.exec(run.stdout)?.[1];
  if (file === undefined) throw new Error(`no raw trace path in:\n${run.stdout}\n${run.stderr}`);
  return readFileSync(path.resolve(REPO_ROOT, file), 'utf8');
};

const scratch = scratchDir('mmapkit-trace-test-');
/** A fresh output directory for one command, removed with the file's scratch directory. */
const out = (): string => mkdtempSync(path.join(scratch(), 'out-'));

describe('mmapkit trace', () => {
  it('remap map: the driver\'s mmap calls remap_pfn_range', async () => {
    const run = await command('trace', '--device', 'remap', '--scenario', 'map', '--out', out());
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/mmapkit_mmap_remap \[mmapkit\]/);
    const analysis = analyseTrace(parseFunctionGraph(rawTraceOf(run)));
    const mmap = analysis.syscalls.find((call) => call.node.name === '__x64_sys_mmap')!;
    const chain = callPath(mmap.node, 'remap_pfn_range');
    expect(chain).toBeDefined();
    expect(chain!.slice(-4)).toEqual(['mmap_file', 'mmapkit_mmap_remap', 'mmapkit_remap_vma', 'remap_pfn_range']);
  });

  it('fault touch: handle_mm_fault reaches the driver\'s fault handler', async () => {
    const run = await command('trace', '--device', 'fault', '--scenario', 'touch', '--out', out());
    expect(run.code, run.stderr).toBe(0);
    const analysis = analyseTrace(parseFunctionGraph(rawTraceOf(run)));
    const onMapping = analysis.faults.filter((fault) => fault.inMapping);
    expect(onMapping).toHaveLength(4);
    for (const fault of onMapping) {
      expect(callPath(fault.node, 'mmapkit_vma_fault')?.[0]).toBe('handle_mm_fault');
      expect(namesIn(fault.node).has('vmf_insert_pfn')).toBe(true);
    }
  });

  it('a bad scenario is a one-line usage error', async () => {
    const run = await command('trace', '--scenario', 'frob');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/--scenario takes/);
  });
});

describe('mmapkit explain', () => {
  async function explain(device: string): Promise<{ html: string; evidence: ExplainEvidence; stdout: string }> {
    const dir = out();
    const run = await command('explain', '--device', device, '--out', dir);
    expect(run.code, run.stderr).toBe(0);
    return {
      html: readFileSync(path.join(dir, 'report.html'), 'utf8'),
      evidence: JSON.parse(readFileSync(path.join(dir, 'evidence.json'), 'utf8')) as ExplainEvidence,
      stdout: run.stdout,
    };
  }

  it('writes the HTML report, whose demand-paging verdict follows this run\'s fault counts', async () => {
    const remap = await explain('remap');
    for (const id of ['space', 'walk', 'claims']) expect(remap.html).toContain(`id="${id}"`);
    expect(remap.html).toContain('<svg');
    const fault = await explain('fault');
    const verdictIn = (stdout: string): string | undefined => /\[([^\]]+)\] No data is in RAM/.exec(stdout)?.[1];
    const faultsOf = (evidence: ExplainEvidence): number => demandFaults(evidence.measure.targets.find((t) => t.target === evidence.device)!);
    expect(faultsOf(remap.evidence)).toBe(0);
    expect(faultsOf(fault.evidence)).toBeGreaterThan(0);
    expect(verdictIn(remap.stdout)).toBe('holds only for files');
    expect(verdictIn(fault.stdout)).toBe('holds');
  });
});
