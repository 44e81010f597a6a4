// How mmapkit stops when told to (tools/cli/interrupts.ts), tried on a small
// program that installs the same handlers and starts a child of its own: a
// signal, the parent's death and a signal sent to a parent make each end it
// with 128 + the signal's number, and its child with it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caughtSignals, descendantsOf, parentOf, signalExitCode } from '../../tools/cli/interrupts.js';
import { REPO_ROOT } from '../../tools/paths.js';
import { scratchDir } from '../scratch-dir.js';

const scratch = scratchDir('mmapkit-interrupts-test-');
const started: ChildProcess[] = [];
afterAll(() => {
  // Whatever a failed case left running: each launcher and everything below it.
  for (const pid of started.flatMap((child) => (child.pid === undefined ? [] : [child.pid, ...descendantsOf(child.pid)]))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A program that stops as mmapkit does, with a `sleep` child; prints "PID CHILD_PID" once ready. */
const program = (): string => path.join(scratch(), 'stoppable.ts');
beforeAll(() =>
  writeFileSync(
    program(),
  `import { spawn } from 'node:child_process';
import { exitOnInterrupt } from ${JSON.stringify(path.join(REPO_ROOT, 'tools', 'cli', 'interrupts.ts'))};
exitOnInterrupt((line) => process.stderr.write(\`mmapkit: \${line}\\n\`));
const child = spawn('sleep', ['60'], { stdio: 'ignore' });
process.stdout.write(\`\${process.pid} \${child.pid}\\n\`);
setInterval(() => undefined, 1000);
`,
  ),
);
const runProgram = (): string => `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(program())}`;

interface Started {
  launcher: ChildProcess;
  program: number;
  child: number;
  stderr: () => string;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `command` (which runs the program somewhere below it) and waits for the program's pids. */
async function start(command: string, args: string[]): Promise<Started> {
  const launcher = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(launcher);
  let stderr = '';
  launcher.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    launcher.on('close', (code, signal) => resolve({ code, signal })),
  );
  const line = await new Promise<string>((resolve, reject) => {
    launcher.stdout!.on('data', (chunk: Buffer) => resolve(chunk.toString()));
    void closed.then(() => reject(new Error(`the program ended before it was ready: ${stderr}`)));
  });
  const [program, child] = line.trim().split(' ').map(Number);
  return { launcher, program: program!, child: child!, stderr: () => stderr, closed };
}

/** Alive: in /proc and not a zombie. */
function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    return readFileSync(stat, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until none of `pids` is alive, for at most `ms`; returns those still alive. */
async function gone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return pids.filter(alive);
}

describe('signalExitCode', () => {
  it('is 128 + the signal number, as a shell reports it', () => {
    expect(signalExitCode('SIGHUP')).toBe(129);
    expect(signalExitCode('SIGINT')).toBe(130);
    expect(signalExitCode('SIGTERM')).toBe(143);
  });
});

describe('process facts from /proc', () => {
  it('parentOf and descendantsOf follow the process tree', async () => {
    expect(parentOf()).toBe(process.ppid);
    const shell = spawn('sh', ['-c', 'sleep 60 & sleep 60 & wait'], { stdio: 'ignore' });
    started.push(shell);
    let below: number[] = [];
    for (let tries = 0; below.length < 2 && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      below = descendantsOf(shell.pid!);
    }
    expect(below).toHaveLength(2);
    for (const pid of below) expect(parentOf(pid)).toBe(shell.pid);
    expect(descendantsOf(process.pid)).toEqual(expect.arrayContaining([shell.pid, ...below]));
    shell.kill('SIGKILL');
    for (const pid of below) process.kill(pid, 'SIGKILL');
  });
});

describe('exitOnInterrupt', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)('%s ends the program with %i and kills its child', async (signal, code) => {
    const run = await start(process.execPath, ['--import', 'tsx', program()]);
    expect(caughtSignals(run.program)).toEqual(new Set(['SIGINT', 'SIGTERM', 'SIGHUP']));
    run.launcher.kill(signal);
    expect(await run.closed).toEqual({ code, signal: null });
    expect(run.stderr()).toContain(`mmapkit: interrupted by ${signal}`);
    expect(await gone([run.child], 2000)).toEqual([]);
  });

  it('a parent that dies (npx killed) ends the program within a second, with its child', async () => {
    // "; true" keeps sh waiting as the program's parent instead of exec-ing it.
    const run = await start('sh', ['-c', `${runProgram()}; true`]);
    expect(parentOf(run.program)).toBe(run.launcher.pid);
    run.launcher.kill('SIGKILL');
    expect(await gone([run.program, run.child], 2000)).toEqual([]);
    expect(run.stderr()).toContain(`mmapkit: the parent process (${run.launcher.pid}) ended`);
  });

  it('SIGINT sent to a parent make (which only waits for its children) ends the program with 130', async () => {
    const makefile = path.join(scratch(), 'Makefile');
    // No quotes, as in our Makefile: make then runs the command itself rather than through sh.
    writeFileSync(makefile, `run:\n\t${process.execPath} --import tsx ${program()}\n`);
    const run = await start('make', ['-s', '-f', makefile]);
    expect(parentOf(run.program)).toBe(run.launcher.pid);
    run.launcher.kill('SIGINT');
    const end = await run.closed;
    expect(end.signal ?? end.code).toMatch(/^(SIGINT|130)$/);
    expect(run.stderr()).toContain('mmapkit: interrupted by SIGINT (sent to make)');
    expect(await gone([run.program, run.child], 2000)).toEqual([]);
  });
});
