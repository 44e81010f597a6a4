/**
 * `mmapkit` on a fresh clone, before `make setup`: no node_modules, so no
 * esbuild to bundle the TypeScript CLI with. The main usage still prints, for a
 * command's --help too; anything else is one line saying to run `make
 * setup`, exit 3, and no stack trace.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { MAIN_USAGE, REPO_ROOT } from '../../tools/paths.js';
import { scratchDir } from '../scratch-dir.js';

// What a clone holds of the entry point: bin/, the usage text, package.json; no node_modules anywhere above.
const clone = scratchDir('mmapkit-fresh-clone-');
beforeAll(() => {
  for (const file of ['bin', path.relative(REPO_ROOT, MAIN_USAGE), 'package.json']) {
    cpSync(path.join(REPO_ROOT, file), path.join(clone(), file), { recursive: true });
  }
});

const mmapkit = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(clone(), 'bin', 'mmapkit.js'), ...args], { cwd: clone(), encoding: 'utf8' });

describe('before make setup', () => {
  it.each([[[]], [['--help']], [['-h']], [['help']]])('mmapkit %j prints the main usage and exits 0', (args) => {
    const result = mmapkit(...args);
    expect(result.status).toBe(ExitCode.PASSED);
    expect(result.stdout).toBe(readFileSync(MAIN_USAGE, 'utf8'));
    expect(result.stderr).toBe('');
  });

  it.each([
    [['test', '--help'], 'test'],
    [['vm', 'run', '-h', '--', 'true'], 'vm run'],
  ])("mmapkit %j prints the main usage, says the command's own options need make setup, exits 0", (args, name) => {
    const result = mmapkit(...args);
    expect(result.status).toBe(ExitCode.PASSED);
    expect(result.stdout).toBe(readFileSync(MAIN_USAGE, 'utf8'));
    expect(result.stderr).toBe(`mmapkit: the options of \`mmapkit ${name}\` print once \`make setup\` has installed the dependencies\n`);
  });

  it.each([[['vm', 'run', '--', 'true']], [['build']], [['vm', 'run', '--', 'cmd', '--help']]])('mmapkit %j says to run make setup in one line, exit 3', (args) => {
    const result = mmapkit(...args);
    expect(result.status).toBe(ExitCode.SETUP);
    expect(result.stderr).toMatch(/^mmapkit: error: .*run `make setup`\n$/);
    expect(result.stdout).toBe('');
  });
});
