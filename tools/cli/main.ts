/**
 * mmapkit's command line. Finds the command and hands it the rest; each
 * command's module is loaded only when it runs, so that `--help`, a usage
 * error or a short command does not load every other command's code first.
 * Every failure ends as one line and an exit code (tools/exit-codes.ts),
 * never a stack trace.
 */
import { ExitCode, UserError } from '../exit-codes.js';
import { EXIT_CODE_OF, SessionEndedError } from '../qemu/outcome.js';
import { exitOnInterrupt } from './interrupts.js';
import { printMainHelp, reportEnd, say } from './messages.js';

type Command = (args: string[]) => number | Promise<number>;

/** Every command, by the word that names it, and where it lives; `vm` takes a second word. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  build: async () => (await import('../builder/command.js')).buildCommand,
  test: async () => (await import('../test/test-command.js')).testCommand,
  lint: async () => (await import('../lint/command.js')).lintCommand,
  trace: async () => (await import('../trace/command.js')).traceCommand,
  explain: async () => (await import('../explain/command.js')).explainCommand,
  bench: async () => (await import('../bench/command.js')).benchCommand,
  fuzz: async () => (await import('../fuzz/command.js')).fuzzCommand,
  'merge-results': async () => (await import('../test/merge-command.js')).mergeCommand,
  vm: async () => (await import('./vm-command.js')).vmCommand,
};

async function main([command, ...rest]: string[]): Promise<number> {
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') return printMainHelp();
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (load === undefined) throw new UserError(`unknown command '${command}' (try: mmapkit --help)`);
  return (await load())(rest);
}

exitOnInterrupt(say);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof SessionEndedError) {
      reportEnd(error.end, error.session);
      process.exit(error.end.state === 'completed' ? ExitCode.BOOT_FAILED : EXIT_CODE_OF[error.end.state]);
    }
    if (error instanceof UserError) {
      say(`error: ${error.message}`);
      process.exit(error.exitCode);
    }
    const message = error instanceof Error ? error.message : String(error);
    say(`error: ${message}`);
    if (process.env.MMAPKIT_DEBUG !== undefined && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
    process.exit(ExitCode.SETUP);
  },
);
