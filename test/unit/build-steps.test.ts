// The build's step loop (tools/builder/steps.ts): a step runs when its inputs, its salt or its outputs say so, never otherwise.
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Step, runSteps, stampFile } from '../../tools/builder/steps.js';

const cleanUp: string[] = [];
afterEach(() => {
  for (const file of cleanUp.splice(0)) rmSync(file, { recursive: true, force: true });
});

/** A step that writes its output, counting its runs; its stamp is removed after the test. */
function countingStep(salt = ''): { step: Step; runs: () => number; input: string; output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-steps-'));
  const input = path.join(dir, 'input.c');
  const output = path.join(dir, 'output.o');
  writeFileSync(input, 'int x;\n');
  let runs = 0;
  const step: Step = {
    name: `unit-test-${path.basename(dir)}`,
    inputs: () => [input],
    salt,
    outputs: [output],
    run: () => {
      runs++;
      writeFileSync(output, 'built');
      return Promise.resolve();
    },
  };
  cleanUp.push(dir, stampFile(step));
  return { step, runs: () => runs, input, output };
}

describe('runSteps', () => {
  it('runs a step once, then skips it while nothing changed, and logs what it ran', async () => {
    const { step, runs } = countingStep();
    const log: string[] = [];
    expect(await runSteps([step], (line) => log.push(line))).toEqual([step.name]);
    expect(await runSteps([step], (line) => log.push(line))).toEqual([]);
    expect(runs()).toBe(1);
    expect(log[0]).toBe(`build: ${step.name} ...`);
    expect(log[1]).toMatch(new RegExp(`^build: ${step.name} done in \\d+\\.\\d s$`));
    expect(log).toHaveLength(2);
  });

  it('runs it again when an input changes, an output is missing, or the salt differs', async () => {
    const { step, runs, input, output } = countingStep('6.1');
    await runSteps([step], () => undefined);
    utimesSync(input, new Date(), new Date(Date.now() + 5000));
    await runSteps([step], () => undefined);
    rmSync(output);
    await runSteps([step], () => undefined);
    await runSteps([{ ...step, salt: '6.12' }], () => undefined);
    expect(runs()).toBe(4);
  });

  it('stops at a failing step, leaving it to run next time', async () => {
    const { step, runs } = countingStep();
    const failing: Step = { ...step, run: () => Promise.reject(new Error('make failed')) };
    await expect(runSteps([failing], () => undefined)).rejects.toThrow('make failed');
    await runSteps([step], () => undefined);
    expect(runs()).toBe(1);
  });
});
