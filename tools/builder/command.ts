/** `mmapkit build`: the module, the addon, the agent bundle and the type check, for each kernel asked for. */
import { ExitCode } from '../exit-codes.js';
import { VM_OPTIONS, kernelsOf, parseOptions } from '../cli/guest-command.js';
import { printHelp, say } from '../cli/messages.js';
import { build } from './build.js';

export const BUILD_HELP = `usage: mmapkit build [--kernel K | --kernels all|LIST] [--kdir DIR] [--verbose]

Builds kmod/ against the guest kernel's headers, the native addon, the guest
agent bundle, and type-checks the TypeScript. Steps whose inputs did not change
are skipped.
  --verbose           show the compilers' full output`;

export async function buildCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    kernel: VM_OPTIONS.kernel,
    kernels: VM_OPTIONS.kernels,
    kdir: VM_OPTIONS.kdir,
    verbose: { type: 'boolean', default: false },
    help: VM_OPTIONS.help,
  });
  if (values.help) return printHelp(BUILD_HELP);
  for (const kernel of kernelsOf(values)) {
    say(`guest kernel ${kernel.version} (headers ${kernel.headers})`);
    await build({ kernel, verbose: values.verbose, log: say });
  }
  return ExitCode.PASSED;
}
