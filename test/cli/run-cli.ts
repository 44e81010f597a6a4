/** Runs `mmapkit ARGS` as a user would: a child process, judged by its exit code and output. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../tools/paths.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time of the whole command. */
  seconds: number;
}

export function runCli(...args: string[]): Promise<CliResult> {
  return runCliWithEnv({}, ...args);
}

/** runCli with these variables added to (or, given as undefined, taken out of) the environment. */
export function runCliWithEnv(env: Record<string, string | undefined>, ...args: string[]): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'mmapkit.js'), ...args], {
      cwd: REPO_ROOT,
      env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, value]) => value !== undefined)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
  });
}
