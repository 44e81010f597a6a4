/**
 * Records scenarios in a booted guest: prepares ftrace once, then for each
 * scenario arms the graph roots, runs guest/scenario.ts as its own process
 * (it limits tracing to its pid and switches the buffer on around the
 * operation) and reads the raw trace back.
 */
import { SetupError } from '../exit-codes.js';
import { SCENARIO_BUNDLE } from '../paths.js';
import type { GuestClient } from '../qemu/guest-client.js';
import type { MeasureResult, ScenarioName, TraceScenarioResult } from '../../guest/scenario-types.js';
import { GRAPH_ROOTS, PREPARE_FAILURES, TRACEFS, armScript, prepareScript } from './ftrace.js';

export interface Recording {
  scenario: ScenarioName;
  target: string;
  /** The raw function_graph trace, as `cat trace` printed it. */
  raw: string;
  result: TraceScenarioResult;
  /** Wall time of the scenario process, ms. */
  ms: number;
}

async function sh(guest: GuestClient, script: string): Promise<{ code: number | null; output: string }> {
  const chunks: Uint8Array[] = [];
  const result = await guest.exec(['sh', '-c', script], { onOutput: (event) => chunks.push(event.data) });
  return { code: result.code, output: Buffer.concat(chunks).toString() };
}

/** Checks for tracefs and function_graph and switches the tracer on; a clear SetupError if the kernel lacks them. */
export async function prepareTracing(guest: GuestClient): Promise<void> {
  const { code, output } = await sh(guest, prepareScript());
  if (code === 0) return;
  const reason = (code !== null && PREPARE_FAILURES[code]) || `the ftrace set-up failed (status ${String(code)}): ${output.trim()}`;
  throw new SetupError(reason);
}

/** The last JSON line a scenario printed. */
export function lastJson<T>(stdout: string): T {
  const line = stdout.trim().split('\n').filter((text) => text.startsWith('{')).pop();
  if (line === undefined) throw new Error(`the scenario printed no result: ${stdout.trim().slice(0, 400)}`);
  return JSON.parse(line) as T;
}

export async function recordScenario(
  guest: GuestClient,
  scenario: ScenarioName,
  target: string,
  pages = 4,
  create = false,
): Promise<Recording> {
  const armed = await sh(guest, armScript(GRAPH_ROOTS[scenario]));
  if (armed.code !== 0) throw new SetupError(PREPARE_FAILURES[93] ?? 'cannot set the graph roots');
  const started = Date.now();
  const stdout = await guest.run(
    ['node', SCENARIO_BUNDLE, 'trace', '--scenario', scenario, '--target', target, '--pages', String(pages), '--tracefs', TRACEFS,
      ...(create ? ['--create'] : [])],
  );
  const ms = Date.now() - started;
  const raw = await guest.run(['cat', `${TRACEFS}/trace`]);
  return { scenario, target, raw, result: lastJson<TraceScenarioResult>(stdout), ms };
}

/** The explain command's measurements: every target in one scenario process. */
export async function measureTargets(guest: GuestClient, targets: string[], pages = 8): Promise<MeasureResult> {
  const stdout = await guest.run(['node', SCENARIO_BUNDLE, 'measure', ...targets.flatMap((t) => ['--target', t]), '--pages', String(pages)]);
  return lastJson<MeasureResult>(stdout);
}
