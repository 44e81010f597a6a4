/**
 * The build's step loop, shared by `mmapkit build` (tools/builder/build.ts) and
 * the fixture modules (tools/builder/fixtures.ts): each step fingerprints its
 * inputs and is skipped while its stamp under build/stamps/ matches and its
 * outputs exist, so a second build does no work.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BUILD_DIR } from '../paths.js';
import { withBuildLock } from './lock.js';

export interface Step {
  name: string;
  /** Files whose content decides the output. */
  inputs: () => string[];
  /** Extra facts the output depends on (the kernel release, ...). */
  salt?: string;
  outputs: string[];
  run: () => Promise<void>;
}

export function fingerprint(step: Step): string {
  const hash = createHash('sha256').update(step.salt ?? '');
  for (const file of step.inputs()) {
    const stat = statSync(file);
    hash.update(`${file}\0${stat.size}\0${stat.mtimeMs}\n`);
  }
  return hash.digest('hex');
}

export const stampFile = (step: Step): string => path.join(BUILD_DIR, 'stamps', `${step.name.replace(/\W+/g, '-')}.stamp`);

export function upToDate(step: Step, print: string): boolean {
  const stamp = stampFile(step);
  return (
    existsSync(stamp) && readFileSync(stamp, 'utf8') === print && step.outputs.every((output) => existsSync(output))
  );
}

/**
 * Runs the steps that are not up to date, in order, logging each; returns the
 * names of those it ran. They run under the checkout's build lock
 * (tools/builder/lock.ts), so that commands started together wait for one
 * another instead of writing the same objects at once; when every step is up
 * to date no lock is taken and nothing is said.
 */
export async function runSteps(steps: Step[], log: (line: string) => void): Promise<string[]> {
  if (steps.every((step) => upToDate(step, fingerprint(step)))) return [];
  return withBuildLock(log, async () => {
    const built: string[] = [];
    for (const step of steps) {
      // Checked again under the lock: the build this one waited for may have done it.
      const print = fingerprint(step);
      if (upToDate(step, print)) continue;
      const started = Date.now();
      log(`build: ${step.name} ...`);
      // No stamp while the outputs are being written: a command that checks without the lock
      // then finds the step stale and waits here, instead of taking half-written outputs.
      rmSync(stampFile(step), { force: true });
      await step.run();
      mkdirSync(path.dirname(stampFile(step)), { recursive: true });
      // The fingerprint from before the step: an input edited while it ran makes the next build run it again.
      writeFileSync(stampFile(step), print);
      log(`build: ${step.name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      built.push(step.name);
    }
    return built;
  });
}
