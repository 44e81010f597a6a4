/**
 * What the guest agent needs to start before any 9p share is mounted: node
 * and the libraries the dynamic linker loads for it, each at the path the
 * linker looks it up by and the file it is really (under the shared /usr).
 *
 * With the hold point (tools/qemu/snapshot.ts) guest/init.sh copies these
 * files from the usr share onto a tmpfs, unmounts the share again (QEMU
 * refuses to save a guest with a 9p share mounted) and starts the agent
 * before the guest is saved, so that a restored guest does not pay node's
 * start, about 1 s of emulated work (docs/benchmarks.md, "The agent in the
 * saved guest"). The list goes into the initramfs (initramfs.ts) and the
 * files' identities into the saved state's key.
 */
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { SetupError } from '../exit-codes.js';
import { ADDON_PATH, AGENT_BUNDLE, REPO_ROOT } from '../paths.js';

/** The node the guest runs its agent with: the host's, through the usr share. */
export const GUEST_NODE = '/usr/bin/node';

export interface RuntimeFile {
  /** The path a program or the dynamic linker opens it by, as the guest sees it. */
  lookup: string;
  /** The file itself, every link resolved: under /usr, the only host directory the guest shares whole. */
  real: string;
}

/**
 * The library paths in `ldd` output: "name => /path (0x...)" for each library
 * it found and "/path (0x...)" for the dynamic linker; the vDSO has no file.
 * A library ldd could not find ("name => not found") is refused: node would not start.
 */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const line of output.split('\n')) {
    const text = line.trim();
    if (text === '') continue;
    if (/=> not found$/.test(text)) throw new Error(`ldd: ${text}`);
    const match = /^(?:\S+ => )?(\/\S+) \(0x[0-9a-f]+\)$/.exec(text);
    if (match !== null) paths.push(match[1]!);
    else if (!/^\S+ \(0x[0-9a-f]+\)$/.test(text) && !/^statically linked$/.test(text)) throw new Error(`ldd printed a line not understood: '${text}'`);
  }
  return paths;
}

/** Each path with the file it resolves to, which must lie under /usr: a merged-/usr host (guest-view.ts). */
export function runtimeFiles(lookups: readonly string[], resolve: (file: string) => string = realpathSync): RuntimeFile[] {
  return lookups.map((lookup) => {
    const real = resolve(lookup);
    if (!real.startsWith('/usr/') || /\s/.test(lookup) || /\s/.test(real)) {
      throw new SetupError(`${lookup} is ${real}: the guest agent's runtime must lie under /usr without spaces (a merged-/usr host, Debian 12)`);
    }
    return { lookup, real };
  });
}

let cached: RuntimeFile[] | undefined;

/** GUEST_NODE and the libraries it loads, node first; computed once per process. */
export function agentRuntime(): RuntimeFile[] {
  if (cached !== undefined) return cached;
  const result = spawnSync('ldd', [GUEST_NODE], { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) {
    throw new SetupError(`ldd ${GUEST_NODE} failed: ${result.error?.message ?? (result.stderr.trim() || `status ${result.status}`)}`);
  }
  cached = runtimeFiles([GUEST_NODE, ...parseLdd(result.stdout)]);
  return cached;
}

/**
 * The checkout's files the held agent opens before the save: its bundle and the addon, relative to the
 * checkout. init.sh copies them (the initramfs lists them) and the saved state's key holds their bytes.
 */
export const AGENT_CHECKOUT_FILES: readonly string[] = [AGENT_BUNDLE, ADDON_PATH].map((file) => path.relative(REPO_ROOT, file));

/** The list as guest/init.sh reads it: "LOOKUP REAL" a line, node first. */
export const runtimeList = (files: readonly RuntimeFile[]): string => files.map(({ lookup, real }) => `${lookup} ${real}\n`).join('');
