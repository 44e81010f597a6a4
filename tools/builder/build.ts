/**
 * `mmapkit build`: the names TypeScript reads from C headers
 * (header-names.ts), the kernel module (Kbuild, against the guest kernel's
 * headers), the native addon (node-gyp), the TypeScript type check and the
 * guest agent bundle. Each step fingerprints its inputs and is skipped when
 * nothing changed, so a second build does no work.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ProcessOutput } from 'zx';
import { SetupError, UserError } from '../exit-codes.js';
import type { GuestKernel } from '../kernel.js';
import { ADDON_PATH, AGENT_BUNDLE, BUILD_DIR, FUZZ_BUNDLE, REPO_ROOT, SCENARIO_BUNDLE, kernelBuildDir, moduleObject } from '../paths.js';
import { HEADER_NAMES_MODULE, HEADER_NAMES_SOURCES, writeHeaderNames } from './header-names.js';
import { type Step, runSteps } from './steps.js';

export interface BuildOptions {
  kernel: GuestKernel;
  verbose?: boolean;
  log: (line: string) => void;
  /**
   * Only the module, or only what the host and the guest's boot need (the rest): `mmapkit test` builds the
   * module while the guest boots. Default: everything.
   */
  only?: 'module' | 'host';
}

const IGNORED = new Set(['node_modules', '.git']);
/** Build output trees, by their path from the repository root (tools/builder/ is source). */
const OUTPUT_TREES = ['build', path.join('native', 'build')];
const isBuildOutput = (name: string): boolean =>
  /\.(o|ko|mod|mod\.c|cmd|order|symvers|d)$/.test(name) || name.startsWith('.');

/** Every file below `dir` (relative names ignored for build output), sorted. */
export function filesUnder(dir: string, keep: (file: string) => boolean = () => true): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && !isBuildOutput(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => {
      const relative = path.relative(REPO_ROOT, file);
      if (OUTPUT_TREES.some((tree) => relative.startsWith(`${tree}${path.sep}`))) return false;
      return !relative.split(path.sep).some((part) => IGNORED.has(part));
    })
    .filter(keep)
    .sort();
}

const rootFiles = (...names: string[]): string[] =>
  names.map((name) => path.join(REPO_ROOT, name)).filter((file) => existsSync(file));

/**
 * Runs a command in the checkout, quietly; its output is shown when it fails, or always with
 * --verbose. zx is loaded here, once a step runs: a build with nothing to do needs none of it,
 * and every guest command starts with that check (loading zx took 0.4-0.7 s of a command's start).
 */
export async function run(argv: string[], what: string, verbose: boolean): Promise<string> {
  const { $ } = await import('zx');
  try {
    const output = await $({ quiet: true, cwd: REPO_ROOT })`${argv}`;
    if (verbose) process.stderr.write(output.stdout + output.stderr);
    return output.stdout + output.stderr;
  } catch (error) {
    const output = error as ProcessOutput;
    process.stderr.write(`${output.stdout ?? ''}${output.stderr ?? ''}`);
    throw new UserError(`${what} failed (exit ${String(output.exitCode)}); its output is above`, 3);
  }
}

/** Kbuild writes objects next to the sources; a per-kernel directory of links keeps kmod/ clean. */
export function prepareModuleTree(kernel: GuestKernel, name = 'kmod', source = path.join(REPO_ROOT, 'kmod')): string {
  const tree = path.join(kernelBuildDir(kernel.version), name);
  mkdirSync(tree, { recursive: true });
  // Links to sources that were renamed or deleted would still be compiled.
  for (const stale of readdirSync(tree, { withFileTypes: true })) {
    if (stale.isSymbolicLink()) rmSync(path.join(tree, stale.name));
  }
  for (const entry of readdirSync(source)) {
    if (!isBuildOutput(entry)) symlinkSync(path.join(source, entry), path.join(tree, entry));
  }
  return tree;
}

function nodeGypArgs(): string[] {
  // Build against the running node's own headers (Debian's nodejs puts them
  // in /usr/include/node): node-gyp must never download them.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const nodedir = existsSync(path.join(prefix, 'include', 'node', 'node.h')) ? [`--nodedir=${prefix}`] : [];
  // node-gyp's make runs one compiler at a time unless told otherwise: the addon's
  // sources took 27.6 s so on 2 cores, 13.0-13.9 s with both (2026-12-01).
  return [...nodedir, `--jobs=${os.availableParallelism()}`];
}

/** The launcher that answers Kbuild's compiler probes from KBUILD_PROBES_DIR (its header says why). */
export const KBUILD_CC = path.join(REPO_ROOT, 'tools', 'builder', 'kbuild-cc.sh');
export const KBUILD_PROBES_DIR = path.join(BUILD_DIR, 'kbuild-probes');

/**
 * Kbuild's command line for the out-of-tree module in `tree` (`args`: its targets and variables; W=1 and
 * `modules` by default), with one job per host CPU, so that a module's source files compile side by side
 * (docs/benchmarks.md, "Where issue #16 stands"), and the compiler run through tools/builder/kbuild-cc.sh,
 * in the launcher's place that Debian's headers keep for ccache: headers without it ignore the two variables.
 */
export function kbuildCommand(kernel: GuestKernel, tree: string, args = ['W=1', 'modules']): string[] {
  return [
    'env', `MMAPKIT_KBUILD_PROBES=${KBUILD_PROBES_DIR}`,
    'make', `-j${os.availableParallelism()}`, '-C', kernel.headers, `M=${tree}`,
    'DEBIAN_KERNEL_USE_CCACHE=1', `CCACHE=${KBUILD_CC}`,
    ...args,
  ];
}

function steps(options: BuildOptions): Step[] {
  const { kernel } = options;
  const verbose = options.verbose === true;
  const bin = (name: string): string => path.join(REPO_ROOT, 'node_modules', '.bin', name);
  return [
    {
      // First: the type check and the agent bundle import what it writes.
      name: 'header-names',
      inputs: () => HEADER_NAMES_SOURCES,
      outputs: [HEADER_NAMES_MODULE],
      run: async () => writeHeaderNames(),
    },
    {
      name: `module-${kernel.version}`,
      inputs: () => filesUnder(path.join(REPO_ROOT, 'kmod')),
      salt: `${kernel.version}\0${kernel.headers}`,
      outputs: [moduleObject(kernel.version)],
      run: async () => {
        const tree = prepareModuleTree(kernel);
        const output = await run(kbuildCommand(kernel, tree), 'the module build', verbose);
        // W=1 warnings do not fail Kbuild; they are shown so that nobody ships one.
        const warnings = output.split('\n').filter((line) => /warning:/.test(line));
        if (!verbose && warnings.length > 0) process.stderr.write(warnings.join('\n') + '\n');
      },
    },
    {
      name: 'addon',
      inputs: () => [...filesUnder(path.join(REPO_ROOT, 'native', 'src')), ...rootFiles('native/binding.gyp'),
        ...filesUnder(path.join(REPO_ROOT, 'kmod', 'uapi'))],
      salt: process.version,
      outputs: [ADDON_PATH],
      run: async () => {
        await run([bin('node-gyp'), 'rebuild', '--directory=native', ...nodeGypArgs()], 'the addon build', verbose);
      },
    },
    {
      name: 'types',
      inputs: () => [
        ...['tools', 'guest', 'native', 'test', 'bin'].flatMap((dir) =>
          filesUnder(path.join(REPO_ROOT, dir), (file) => /\.(ts|mts|js|mjs)$/.test(file)),
        ),
        ...rootFiles('tsconfig.json', 'package.json', 'vitest.config.ts'),
      ],
      outputs: [],
      run: async () => {
        await run([bin('tsc'), '-p', 'tsconfig.json'], 'the type check', verbose);
      },
    },
    {
      name: 'agent',
      inputs: () => [
        ...['guest', 'native'].flatMap((dir) => filesUnder(path.join(REPO_ROOT, dir), (file) => file.endsWith('.ts'))),
        // fast-check, bundled into the fuzz program.
        ...rootFiles('package-lock.json'),
      ],
      outputs: [AGENT_BUNDLE, SCENARIO_BUNDLE, FUZZ_BUNDLE],
      run: async () => {
        const { build } = await import('esbuild');
        // One file per program: every module the guest loads over 9p costs a round trip under emulation.
        // The agent, the scenario program that `mmapkit trace` runs as a process of its own, and the fuzz
        // the agent imports for `mmapkit fuzz` (with fast-check).
        // CommonJS, not ESM: node starts a CommonJS program without its ESM loader, and the agent
        // was ready about 0.3 s sooner under TCG (docs/benchmarks.md, "The tool itself").
        // import.meta.url (native/index.ts, guest/scenario.ts) becomes the file's URL.
        await build({
          entryPoints: ['agent', 'scenario', 'fuzz'].map((name) => path.join(REPO_ROOT, 'guest', `${name}.ts`)),
          outdir: path.dirname(AGENT_BUNDLE),
          outExtension: { '.js': '.cjs' },
          bundle: true,
          platform: 'node',
          format: 'cjs',
          banner: { js: 'const __mmapkit_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
          define: { 'import.meta.url': '__mmapkit_import_meta_url' },
          target: 'node20',
          logLevel: 'error',
        });
      },
    },
  ];
}

export interface BuildResult {
  built: string[];
}

export async function build(options: BuildOptions): Promise<BuildResult> {
  if (!existsSync(path.join(REPO_ROOT, 'node_modules'))) throw new SetupError('node_modules is missing: run `make setup`');
  const moduleStep = `module-${options.kernel.version}`;
  const chosen = steps(options).filter((step) => options.only === undefined || (step.name === moduleStep) === (options.only === 'module'));
  const built = await runSteps(chosen, options.log);
  if (built.length === 0) options.log('build: nothing to do (header names, module, addon, types and agent are up to date)');
  return { built };
}
