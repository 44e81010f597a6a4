/**
 * `mmapkit lint`: the kernel community's own gates on kmod/ — checkpatch.pl
 * --strict, a W=1 build and sparse — each of which must report nothing.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { $ } from 'zx';
import { SetupError } from '../exit-codes.js';
import type { GuestKernel } from '../kernel.js';
import { KERNEL_SOURCE_DIR, REPO_ROOT } from '../paths.js';
import { kbuildCommand, prepareModuleTree } from '../builder/build.js';
import { withBuildLock } from '../builder/lock.js';

const CHECKPATCH = path.join(KERNEL_SOURCE_DIR, 'scripts', 'checkpatch.pl');
const CLEAN = /total: 0 errors, 0 warnings, 0 checks/;

function sources(): string[] {
  const kmod = path.join(REPO_ROOT, 'kmod');
  return readdirSync(kmod, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.[ch]$/.test(entry.name) && !entry.name.endsWith('.mod.c'))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

async function checkpatch(log: (line: string) => void): Promise<number> {
  if (!existsSync(CHECKPATCH)) throw new SetupError(`${CHECKPATCH} is missing: run \`make setup\` (unpacks linux-source-6.1)`);
  let problems = 0;
  // All at once (perl is one process per file, and the host has cores to spare), reported in file order.
  const files = sources();
  const results = await Promise.all(files.map((file) => $({ nothrow: true, quiet: true })`${CHECKPATCH} --strict --no-tree --show-types -f ${file}`));
  for (const [index, result] of results.entries()) {
    const relative = path.relative(REPO_ROOT, files[index]!);
    if (CLEAN.test(result.stdout)) continue;
    problems++;
    log(`lint: checkpatch: ${relative}`);
    process.stderr.write(result.stdout);
  }
  return problems;
}

/**
 * Compiles every file afresh (a clean tree), so that W=1 and sparse see all of them;
 * under the build lock, since the tree is shared with any other lint in this checkout.
 */
async function compilerAndSparse(kernel: GuestKernel, log: (line: string) => void): Promise<number> {
  const quiet = $({ nothrow: true, quiet: true });
  const result = await withBuildLock(log, async () => {
    const tree = prepareModuleTree(kernel, 'lint-kmod');
    await quiet`${kbuildCommand(kernel, tree, ['clean'])}`;
    return quiet`${kbuildCommand(kernel, tree, ['W=1', 'C=2', 'modules'])}`;
  });
  const reports = (result.stdout + result.stderr)
    .split('\n')
    .filter((line) => /(warning|error):/.test(line) || (/\.[ch]:\d+:\d+: /.test(line) && !/^\s*(CC|LD|CHECK)/.test(line)));
  if (result.exitCode !== 0) log(`lint: the W=1 C=2 build failed (exit ${String(result.exitCode)})`);
  if (reports.length > 0) {
    log('lint: compiler or sparse reports:');
    process.stderr.write(reports.map((line) => `  ${line}\n`).join(''));
  }
  return reports.length + (result.exitCode === 0 ? 0 : 1);
}

export async function lintModule(kernel: GuestKernel, log: (line: string) => void): Promise<number> {
  const which = await $({ nothrow: true, quiet: true })`which sparse`;
  if (which.exitCode !== 0) throw new SetupError('sparse is not installed: run `make setup`');
  const problems = (await checkpatch(log)) + (await compilerAndSparse(kernel, log));
  log(
    problems === 0
      ? `lint: kmod/ is clean on ${kernel.version} (checkpatch --strict, W=1, sparse; ${sources().length} files)`
      : `lint: ${problems} problem(s) on ${kernel.version}`,
  );
  return problems;
}

/**
 * The lint on several kernels (`--kernels all`): the W=1 build and sparse
 * see each kernel's headers, and so each side of every mmapkit-compat.h
 * probe. checkpatch does not depend on the kernel and runs once.
 */
export async function lintKernels(kernels: GuestKernel[], log: (line: string) => void): Promise<number> {
  const which = await $({ nothrow: true, quiet: true })`which sparse`;
  if (which.exitCode !== 0) throw new SetupError('sparse is not installed: run `make setup`');
  let problems = await checkpatch(log);
  for (const kernel of kernels) {
    const found = await compilerAndSparse(kernel, log);
    log(found === 0 ? `lint: W=1 and sparse clean on ${kernel.version}` : `lint: ${found} problem(s) on ${kernel.version}`);
    problems += found;
  }
  log(problems === 0 ? `lint: kmod/ is clean (${sources().length} files; ${kernels.map((k) => k.series).join(', ')})` : `lint: ${problems} problem(s)`);
  return problems;
}
