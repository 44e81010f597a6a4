/**
 * `mmapkit bench` as a user runs it, in a child process with its own guest:
 * a smoke run over the two smallest sizes, one sample each. It checks that
 * the bench runs and writes what it promises, never how fast anything is
 * (the targets are the bench's own output, not assertions).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BenchResults } from '../../tools/bench/results.js';
import { ExitCode } from '../../tools/exit-codes.js';
import { guestCpus } from '../../tools/qemu/session.js';
import { scratchDir } from '../scratch-dir.js';
import { runCli } from './run-cli.js';

const bench = (...args: string[]): ReturnType<typeof runCli> => runCli('bench', ...args);

const out = scratchDir('bench-test-');

describe('mmapkit bench', () => {
  it('--help prints usage and exits 0; a bad size is a one-line usage error', async () => {
    const help = await bench('--help');
    expect(help.code).toBe(ExitCode.PASSED);
    expect(help.stdout).toMatch(/^usage: mmapkit bench/);
    const bad = await bench('--sizes', '3K');
    expect(bad.code).toBe(ExitCode.USAGE);
    expect(bad.stderr).toMatch(/whole number of 4 KiB pages/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('a smoke run over 4K and 16K prints the table and writes results.json and the SVG plots', async () => {
    const result = await bench('--sizes', '4K,16K', '--repeat', '1', '--out', out());
    expect(result.code, result.stderr).toBe(ExitCode.PASSED);
    // Progress: one line per case.
    expect(result.stderr).toMatch(/bench \[1\/\d+\] map remap 4K/);
    expect(result.stdout).toMatch(new RegExp(`^mmapkit bench: kernel \\S+, accelerator tcg, ${guestCpus()} CPUs?,`));
    for (const title of ['mapping cost', 'sequential read', 'random 8-byte reads', 'targets:']) expect(result.stdout).toContain(title);

    expect(readdirSync(out()).sort()).toEqual([
      'mapping-cost-per-page.svg', 'mapping-cost-total.svg', 'random-access.svg', 'read-throughput.svg', 'results.json', 'table.txt',
    ]);
    const json = JSON.parse(readFileSync(path.join(out(), 'results.json'), 'utf8')) as BenchResults;
    expect(json.environment).toMatchObject({ accelerator: 'tcg', cpus: guestCpus(), icount: null, moduleBufferBytes: 16384 });
    expect(json.environment.kernel).toMatch(/^\d+\.\d+/);
    expect(json.settings.sizes).toEqual([4096, 16384]);
    expect(json.problems).toEqual([]);
    expect(json.targets).toHaveLength(3);
    // Every case measured, with its faults: the fault device with fault_around 16 maps 16K in one fault.
    expect(json.results).toHaveLength(10 + 8 + 6);
    const fault16 = json.results.find((r) => r.group === 'map' && r.strategy === 'fault-16' && r.size === 16384)!;
    expect(fault16.driverFaults).toBe(1);
    const fault1 = json.results.find((r) => r.group === 'map' && r.strategy === 'fault-1' && r.size === 16384)!;
    expect(fault1.driverFaults).toBe(4);
    for (const r of json.results) expect(r.time.median).toBeGreaterThan(0);

    const svg = readFileSync(path.join(out(), 'mapping-cost-per-page.svg'), 'utf8');
    expect(svg.match(/<polyline /g)).toHaveLength(5);
  });
});
