/** `mmapkit lint`: kmod/ through checkpatch, W=1 and sparse on each kernel asked for (tools/lint/lint.ts). */
import { ExitCode } from '../exit-codes.js';
import { VM_OPTIONS, kernelsOf, parseOptions } from '../cli/guest-command.js';
import { printHelp, say } from '../cli/messages.js';
import { lintKernels } from './lint.js';

export const LINT_HELP = `usage: mmapkit lint [--kernel K | --kernels all|LIST] [--kdir DIR]

Kernel-side lint of kmod/: checkpatch.pl --strict (from the kernel source that
make setup unpacks), a W=1 build and sparse (C=2). Any warning fails.`;

export async function lintCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { kernel: VM_OPTIONS.kernel, kernels: VM_OPTIONS.kernels, kdir: VM_OPTIONS.kdir, help: VM_OPTIONS.help });
  if (values.help) return printHelp(LINT_HELP);
  const problems = await lintKernels(kernelsOf(values), say);
  return problems === 0 ? ExitCode.PASSED : ExitCode.TESTS_FAILED;
}
