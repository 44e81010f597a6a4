/**
 * `mmapkit explain --kernels all` as a user runs it: one command that boots
 * every installed guest kernel in turn, writes each kernel's report and then
 * the comparison computed from those runs. One run only: it boots two guests.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SUPPORTED_SERIES, installedSeries } from '../../tools/kernel.js';
import { REPO_ROOT } from '../../tools/paths.js';
import type { KernelComparison } from '../../tools/explain/compare.js';
import { runCli } from './run-cli.js';
import { scratchDir } from '../scratch-dir.js';

const dir = scratchDir('mmapkit-kernels-test-');

// The comparison needs two kernels; `make setup` installs every supported series.
const series = installedSeries().filter((name) => SUPPORTED_SERIES.includes(name));

describe('mmapkit explain --kernels all', () => {
  it('runs on every kernel and prints the comparison with evidence from each', async () => {
    expect(series, 'a missing series is a set-up error: run `make setup` (it installs 6.1 and 6.12)').toEqual(SUPPORTED_SERIES);
    const run = await runCli('explain', '--kernels', 'all', '--out', dir());
    expect(run.code, `${run.stdout.slice(-3000)}\n${run.stderr}`).toBe(0);
    const comparison = JSON.parse(readFileSync(path.join(dir(), 'comparison.json'), 'utf8')) as KernelComparison;
    const { kernels } = comparison;
    expect(kernels.map((kernel) => /^\d+\.\d+/.exec(kernel)?.[0])).toEqual(series);
    for (const kernel of kernels) {
      expect(run.stdout).toContain(`=== kernel ${kernel}`);
      expect(existsSync(path.join(dir(), kernel, 'report.html'))).toBe(true);
    }
    expect(run.stdout).toContain('all kernels: passed');

    // The section: computed lines naming each kernel, with the lock each fault took.
    const section = run.stdout.slice(run.stdout.indexOf('Kernel comparison: '));
    expect(section).toMatch(new RegExp(`^Kernel comparison: ${kernels.map((k) => k.replace(/[.+]/g, '\\$&')).join(' vs ')}`));
    const faultLocks = comparison.locks.find((row) => row.label === 'fault device');
    expect(faultLocks?.perKernel).toHaveLength(kernels.length);
    for (const entry of faultLocks!.perKernel) {
      expect(entry.faults).toBeGreaterThan(0);
      // Every fault of the driver's ->fault ends up under mmap_lock on both (6.12 after a per-VMA attempt).
      expect(entry.lockFunctions).toContain('lock_mm_and_find_vma');
      expect(section).toContain(`${entry.kernel}: ${entry.faults} fault(s); lock functions ${entry.lockFunctions.join(', ')}`);
    }
    const by = (kernel: string) => faultLocks!.perKernel.find((entry) => entry.kernel === kernel)!;
    const k61 = kernels.find((kernel) => kernel.startsWith('6.1.'));
    const k612 = kernels.find((kernel) => kernel.startsWith('6.12.'));
    if (k61 !== undefined && k612 !== undefined) {
      expect(by(k61).lockFunctions).not.toContain('lock_vma_under_rcu');
      expect(by(k612).lockFunctions).toContain('lock_vma_under_rcu');
      expect(by(k612).retried).toBe(by(k612).faults);
    }
    expect(section).toMatch(/VmFlags (are identical on every kernel|differ)/);
    expect(comparison.fork.map((entry) => entry.kernel)).toEqual(kernels);
    expect(section).toMatch(/Fork after a copy-on-write of the first page/);
    expect(comparison.functions.some((row) => row.path === 'mmap() of the remap device')).toBe(true);

    const html = /^comparison: (\S+)$/m.exec(run.stdout)?.[1];
    expect(html).toBeDefined();
    const page = readFileSync(path.resolve(REPO_ROOT, html!), 'utf8');
    expect(page).toContain('id="comparison"');
    for (const kernel of kernels) expect(page).toContain(`href="${kernel}/report.html"`);
  });
});
