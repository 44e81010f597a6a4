#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so there is no separate compile step.
// On a fresh clone, before `make setup`, there is no node_modules and so no
// tsx: the main usage (plain text) is printed all the same, also for a
// command's --help (its own options need the CLI, so a line says so), and
// anything else says what to do in one line and exits 3, a missing
// prerequisite (tools/exit-codes.ts).
import { readFileSync } from 'node:fs';

let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
  const args = process.argv.slice(2);
  const [command] = args;
  const usage = () => process.stdout.write(readFileSync(new URL('../tools/cli/usage.txt', import.meta.url), 'utf8'));
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    usage();
    process.exit(0);
  }
  // Before `--`, which starts the guest's command in `vm run`.
  const own = args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
  if (own.includes('-h') || own.includes('--help')) {
    usage();
    const name = own.filter((word) => !word.startsWith('-')).join(' ');
    process.stderr.write(`mmapkit: the options of \`mmapkit ${name}\` print once \`make setup\` has installed the dependencies\n`);
    process.exit(0);
  }
  process.stderr.write('mmapkit: error: the dependencies are not installed (no tsx in node_modules): run `make setup`\n');
  process.exit(3);
}
// `mmapkit test` runs vitest in this process. Loaded after tsx.register(), each of vitest's several hundred
// modules takes a round trip to tsx's loader thread: its import took 1.37-1.42 s so against 0.40-0.45 s
// before it (2026-12-02, docs/benchmarks.md), time taken from the module's build and the guest's restore
// beside it. The command's own import then finds every module loaded.
const [command, ...rest] = process.argv.slice(2);
if (command === 'test' && !rest.includes('-h') && !rest.includes('--help')) await import('vitest/node');
tsx.register();
await import('../tools/cli/main.ts');
