/**
 * The buggy-driver fixtures (test/fixtures/kmod/): small modules, each with
 * one classic mmap bug, plus a correct one, that prove the conformance
 * suite catches what it claims to. Each fixture is a directory with its
 * .c, Kbuild and profile.json; common/ holds the header they share.
 *
 * They are built like kmod/ (tools/builder/build.ts): against the guest kernel's
 * headers, in a per-kernel tree of links (build/kernels/<release>/fixtures/
 * <name>/, with common/ next to it), so test/fixtures stays free of build
 * output, all in one Kbuild run that is skipped when none of their sources
 * and not the headers changed. They build under the checkout's build lock,
 * as kmod/ does.
 */
import { existsSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { filesUnder, kbuildCommand, prepareModuleTree, run } from './build.js';
import { type Step, runSteps } from './steps.js';
import type { GuestKernel } from '../kernel.js';
import { REPO_ROOT, kernelBuildDir } from '../paths.js';

export const FIXTURES_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'kmod');
/** The header every fixture includes; not a fixture itself. */
const COMMON = 'common';

/**
 * What the fixtures take from kmod/, linked into common/ in the build tree:
 * the compat header fixture.h includes, and the Kbuild fragment and probes
 * each fixture's Kbuild includes to decide its MMAPKIT_HAVE_* defines.
 */
const KMOD_COMPAT = ['mmapkit-compat.h', 'mmapkit-compat.mk', 'probes'].map((name) => path.join(REPO_ROOT, 'kmod', name));

const compatInputs = (): string[] =>
  KMOD_COMPAT.filter((file) => existsSync(file)).flatMap((file) => (statSync(file).isDirectory() ? filesUnder(file) : [file]));

/** build/kernels/<release>/fixtures/common: links to common/'s files and to kmod/'s compat pieces. */
function prepareCommonTree(kernel: GuestKernel, common: string): void {
  const tree = prepareModuleTree(kernel, path.join('fixtures', COMMON), common);
  for (const file of KMOD_COMPAT) {
    if (existsSync(file)) symlinkSync(file, path.join(tree, path.basename(file)));
  }
}

/** Every fixture: a directory of test/fixtures/kmod with a profile.json, sorted. */
export function fixtureNames(): string[] {
  if (!existsSync(FIXTURES_DIR)) return [];
  return readdirSync(FIXTURES_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== COMMON)
    .filter((entry) => existsSync(path.join(FIXTURES_DIR, entry.name, 'profile.json')))
    .map((entry) => entry.name)
    .sort();
}

export const fixtureProfile = (name: string): string => path.join(FIXTURES_DIR, name, 'profile.json');

/** Where the fixtures are built for a kernel: build/kernels/<release>/fixtures/. */
export const fixturesBuildDir = (version: string): string => path.join(kernelBuildDir(version), 'fixtures');

/** Where a fixture's module is built: build/kernels/<release>/fixtures/<name>/<name>.ko. */
export const fixtureObject = (version: string, name: string): string =>
  path.join(fixturesBuildDir(version), name, `${name}.ko`);

/**
 * Builds every fixture for `kernel` (W=1, like kmod/; warnings are
 * allowed, the bugs are deliberate) and returns name -> absolute .ko path.
 * One Kbuild run over build/kernels/<release>/fixtures/, whose Kbuild names
 * each fixture's directory: Kbuild's start-up and modpost are paid once, not
 * once per fixture, and the fixtures compile side by side (the 13 of them, on
 * 2 cores, 2026-12-01: 41.6 s on 6.1 and 42.2 s on 6.12 one Kbuild run each,
 * 12.7-13.2 s and 16.0-18.5 s in one). Kbuild's own dependency files keep a
 * second run from compiling what did not change (one fixture edited: 6-7 s,
 * its compat probes run again for every directory). A build error throws
 * the UserError of tools/builder/build.ts (exit 3), with Kbuild's output on
 * stderr.
 */
export async function buildFixtures(kernel: GuestKernel, log: (line: string) => void): Promise<Map<string, string>> {
  const common = path.join(FIXTURES_DIR, COMMON);
  const names = fixtureNames();
  const step: Step = {
    name: `fixtures-${kernel.version}`,
    inputs: () => [...names.flatMap((name) => filesUnder(path.join(FIXTURES_DIR, name))), ...filesUnder(common), ...compatInputs()],
    salt: `${kernel.version}\0${kernel.headers}\0${names.join(',')}`,
    outputs: names.map((name) => fixtureObject(kernel.version, name)),
    run: async () => {
      if (existsSync(common)) prepareCommonTree(kernel, common);
      for (const name of names) prepareModuleTree(kernel, path.join('fixtures', name), path.join(FIXTURES_DIR, name));
      const tree = fixturesBuildDir(kernel.version);
      writeFileSync(path.join(tree, 'Kbuild'), `# Written by tools/builder/fixtures.ts: one directory per fixture.\n${names.map((name) => `obj-m += ${name}/\n`).join('')}`);
      await run(kbuildCommand(kernel, tree), 'the build of the fixtures', false);
    },
  };
  await runSteps([step], log);
  return new Map(names.map((name) => [name, fixtureObject(kernel.version, name)]));
}
