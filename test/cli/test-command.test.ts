/**
 * `mmapkit test` as `make run` runs it (--quick, the reference devices) and
 * as CI runs it: vitest's own reporters passed through, the JSON results
 * file, and the final line, all agreeing with each other.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-test-command-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Results {
  counts: { passed: number; failed: number; skipped: number; crashed: number };
  exitCode: number;
  profiles: { name: string; device: string }[];
  cases: { name: string; outcome: string }[];
}

describe('mmapkit test --quick, with a junit report and a results file', () => {
  it('runs the core cases on each reference device once, and every output tells the same story', async () => {
    const junit = path.join(dir, 'junit.xml');
    const resultsFile = path.join(dir, 'results.json');
    const run = await runCli('test', '--quick', '--reporter', 'junit', '--output-file', junit, '--results', resultsFile);
    expect(run.code, `${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`).toBe(ExitCode.PASSED);

    const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as Results;
    // /dev/mmapkit is the remap device under the skeleton's name: the quick run tests it once.
    expect(results.profiles.map((profile) => profile.device).sort()).toEqual(['/dev/mmapkit', '/dev/mmapkit-fault', '/dev/mmapkit-ro']);
    expect(results.exitCode).toBe(0);
    const { passed, failed, skipped, crashed } = results.counts;
    expect(passed).toBeGreaterThan(30);
    expect(results.cases).toHaveLength(passed + failed + skipped + crashed);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe(`${passed} passed, ${failed} failed, ${skipped} skipped, ${crashed} crashed`);
    expect(run.stdout).toMatch(/quick run/);

    // junit lists every collected case, those the quick run left out as skipped.
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/^<\?xml/);
    const ran = [...xml.matchAll(/<testcase [^>]*>\s*(<skipped\/>)?/g)].filter((match) => match[1] === undefined);
    expect(ran).toHaveLength(passed);
  });
});
