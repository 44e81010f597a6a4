/** Where things live in the repository and in its build output. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDON_FILE } from '../native/location.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_DIR = path.join(REPO_ROOT, 'build');
/** Per-kernel artefacts: the extracted vmlinux, the initramfs, the built module. */
export const kernelBuildDir = (version: string): string => path.join(BUILD_DIR, 'kernels', version);
export const ADDON_PATH = path.join(REPO_ROOT, ADDON_FILE);
export const AGENT_BUNDLE = path.join(BUILD_DIR, 'guest', 'agent.cjs');
/** The scenario program that `mmapkit trace` and `explain` run in the guest (guest/scenario.ts). */
export const SCENARIO_BUNDLE = path.join(BUILD_DIR, 'guest', 'scenario.cjs');
/** `mmapkit fuzz`'s program, which the agent imports in the guest (guest/fuzz.ts). */
export const FUZZ_BUNDLE = path.join(BUILD_DIR, 'guest', 'fuzz.cjs');
/** `mmapkit --help`: plain text, which bin/mmapkit.js prints even before `make setup`. */
export const MAIN_USAGE = path.join(REPO_ROOT, 'tools', 'cli', 'usage.txt');
export const INIT_SCRIPT = path.join(REPO_ROOT, 'guest', 'init.sh');
/** One directory per guest session: console log, QEMU command line, results (tools/qemu/run-dir.ts). */
export const RUNS_DIR = path.join(BUILD_DIR, 'runs');
/** `mmapkit trace` and `explain` output, one directory per run unless --out says otherwise. */
export const TRACE_DIR = path.join(BUILD_DIR, 'trace');
/** `mmapkit bench` output, one directory per run unless --out says otherwise. */
export const BENCH_DIR = path.join(BUILD_DIR, 'bench');
/** The kernel source tree make setup unpacks (Debian's linux-source-6.1): checkpatch.pl, kunit.py, the files tests cite. */
export const KERNEL_SOURCE_DIR = path.join(BUILD_DIR, 'linux-source-6.1');
export const moduleObject = (version: string): string => path.join(kernelBuildDir(version), 'kmod', 'mmapkit.ko');
