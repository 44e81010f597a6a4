#!/usr/bin/env node
// Runs the TypeScript CLI from its bundle (bin/cli-bundle.js), made again
// first when a source changed, so there is no separate compile step.
// On a fresh clone, before `make setup`, there is no node_modules and so no
// esbuild to bundle with: the main usage (plain text) is printed all the
// same, also for a command's --help (its own options need the CLI, so a line
// says so), and anything else says what to do in one line and exits 3, a
// missing prerequisite (tools/exit-codes.ts).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { cliEntry } from './cli-bundle.js';

const SETUP_EXIT = 3;

function beforeSetup() {
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
  process.stderr.write('mmapkit: error: the dependencies are not installed (no esbuild in node_modules): run `make setup`\n');
  process.exit(SETUP_EXIT);
}

let entry;
try {
  entry = await cliEntry();
} catch (caught) {
  const error = /** @type {{ code?: string, message?: string, errors?: import('esbuild').Message[] }} */ (caught);
  if (error?.code === 'ERR_MODULE_NOT_FOUND') beforeSetup();
  // esbuild's own: the first error, where it is.
  const [first] = error?.errors ?? [];
  const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : '';
  process.stderr.write(`mmapkit: error: the CLI's sources do not build: ${first !== undefined ? `${where}${first.text}` : String(error?.message ?? error)}\n`);
  process.exit(SETUP_EXIT);
}
// With MMAPKIT_DEBUG, a stack trace names the TypeScript sources, not the bundle.
if (process.env.MMAPKIT_DEBUG !== undefined) process.setSourceMapsEnabled(true);
await import(pathToFileURL(entry).href);
