#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so there is no separate compile step.
// On a fresh clone, before `make setup`, there is no node_modules and so no
// tsx: the main usage (plain text) is printed all the same, and anything else
// says what to do in one line and exits 3, a missing prerequisite
// (tools/exit-codes.ts).
import { readFileSync } from 'node:fs';

let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
  const [command] = process.argv.slice(2);
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(readFileSync(new URL('../tools/cli/usage.txt', import.meta.url), 'utf8'));
    process.exit(0);
  }
  process.stderr.write('mmapkit: error: the dependencies are not installed (no tsx in node_modules): run `make setup`\n');
  process.exit(3);
}
tsx.register();
await import('../tools/cli/main.ts');
