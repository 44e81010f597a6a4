/**
 * The guest's initramfs: a static busybox, the virtio and 9p modules the
 * guest kernel needs before it can reach the host's shares, the skeleton of
 * the guest's root (guest-view.ts) and guest/init.sh as /init. Everything
 * else (node, the addon, the module under test) comes from the host over 9p,
 * so the image stays about 3 MB and is rebuilt only when one of its inputs
 * changes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { SetupError } from '../exit-codes.js';
import { replaceAtomically } from './atomic-file.js';
import { AGENT_CHECKOUT_FILES, type RuntimeFile, agentRuntime, runtimeList } from './agent-runtime.js';
import { type CpioEntry, writeCpio } from './cpio.js';
import { guestRootSkeleton } from './guest-view.js';

/** Loaded in this order; modprobe adds what they depend on. */
export const GUEST_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'virtio_console'];
export const BUSYBOX = '/bin/busybox';

/**
 * The .ko files to insmod, in order, from `modprobe --show-depends` output.
 * modprobe lists shared dependencies once per module that needs them, and
 * "builtin" for what the kernel has built in (6.12's virtio_console).
 */
export function parseModuleOrder(showDepends: string): string[] {
  const order: string[] = [];
  for (const line of showDepends.split('\n')) {
    const [verb, file] = line.trim().split(/\s+/);
    if (verb === 'insmod' && file !== undefined && !order.includes(file)) order.push(file);
  }
  return order;
}

export function moduleOrder(version: string): string[] {
  const result = spawnSync('modprobe', ['-S', version, '--show-depends', '-a', ...GUEST_MODULES], {
    encoding: 'utf8',
  });
  if (result.error !== undefined) throw new SetupError('modprobe not found: run `make setup` (installs kmod)');
  if (result.status !== 0) {
    throw new SetupError(`modprobe cannot resolve ${GUEST_MODULES.join(' ')} for ${version}: ${result.stderr.trim()}`);
  }
  return parseModuleOrder(result.stdout);
}

/**
 * The compressions modules come in (Debian 6.1: plain .ko; 6.12: .ko.xz)
 * and the decompressor for each. Busybox insmod passes the file to
 * init_module() as it is, and a kernel without CONFIG_MODULE_DECOMPRESS
 * cannot take a compressed one, so the initramfs holds plain .ko files.
 */
const MODULE_COMPRESSIONS: { suffix: string; command: [string, ...string[]]; package: string }[] = [
  { suffix: '.xz', command: ['xz', '-dc'], package: 'xz-utils' },
  { suffix: '.zst', command: ['zstd', '-dcq'], package: 'zstd' },
  { suffix: '.gz', command: ['gzip', '-dc'], package: 'gzip' },
];

/** The name a module has in the initramfs: its file name without a compression suffix ("9p.ko.xz" -> "9p.ko"). */
export function moduleName(file: string): string {
  const base = path.basename(file);
  const compression = MODULE_COMPRESSIONS.find((candidate) => base.endsWith(`.ko${candidate.suffix}`));
  return compression === undefined ? base : base.slice(0, -compression.suffix.length);
}

/** A module's ELF object: the file itself, or what its decompressor makes of it. */
export function readModule(file: string): { name: string; data: Buffer } {
  const data = readFileSync(file);
  const compression = MODULE_COMPRESSIONS.find((candidate) => path.basename(file).endsWith(`.ko${candidate.suffix}`));
  if (compression === undefined) return { name: moduleName(file), data };
  const [command, ...args] = compression.command;
  const result = spawnSync(command, args, { input: data, maxBuffer: 1 << 28 });
  if (result.error !== undefined) {
    throw new SetupError(`${command} not found, needed for ${file}: run \`make setup\` (installs ${compression.package})`);
  }
  if (result.status !== 0 || !result.stdout.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    throw new SetupError(`cannot decompress ${file}: ${result.stderr.toString().trim() || 'not an ELF object inside'}`);
  }
  return { name: moduleName(file), data: result.stdout };
}

/** A static binary has no PT_INTERP program header; the initramfs has no libc to load. */
export function isStaticElf(binary: Buffer): boolean {
  const PT_INTERP = 3;
  if (binary.length < 64 || binary.readUInt32BE(0) !== 0x7f454c46) return false;
  const phoff = Number(binary.readBigUInt64LE(32));
  const phentsize = binary.readUInt16LE(54);
  const phnum = binary.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    if (binary.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return false;
  }
  return true;
}

export interface InitramfsInputs {
  busybox: Buffer;
  init: Buffer;
  /** Module file name and contents, in load order. */
  modules: { name: string; data: Buffer }[];
  /** The guest root's skeleton, paths relative to that root; init.sh copies it from /guest-root. */
  guestRoot: CpioEntry[];
  /** Busybox's applets but sh (busyboxApplets): a link in /bin for each. */
  applets: string[];
  /** node and its libraries, which init.sh copies to start the agent before the save point (agent-runtime.ts). */
  agentRuntime: RuntimeFile[];
  /** The checkout's files init.sh copies for the held agent, relative to the checkout (agent-runtime.ts). */
  agentCheckoutFiles: readonly string[];
}

/** Where init.sh finds the agent's runtime files, one "LOOKUP REAL" a line, node first. */
const AGENT_RUNTIME_LIST = 'agent-runtime';
/** Where init.sh finds the checkout's files the held agent opens, one a line. */
const AGENT_CHECKOUT_LIST = 'agent-checkout-files';

/** Where the skeleton of the guest's root lies in the initramfs. */
const GUEST_ROOT_SKELETON = 'guest-root';

/** What goes into the image: a pure function of its inputs, so it can be tested and hashed. */
export function initramfsManifest(inputs: InitramfsInputs): CpioEntry[] {
  const dirs = ['bin', 'dev', 'proc', 'sys', 'sysroot', 'lib', 'lib/modules', 'tmp', GUEST_ROOT_SKELETON];
  return [
    ...dirs.map((dir): CpioEntry => ({ type: 'dir', path: dir, mode: 0o755 })),
    // init's stdio is opened on /dev/console before devtmpfs is mounted.
    { type: 'chardev', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { type: 'file', path: 'bin/busybox', mode: 0o755, data: inputs.busybox },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    // The links `busybox --install -s /bin` would make, made here: init.sh
    // no longer spends about 25 ms of its boot on them under TCG
    // (docs/benchmarks.md, "The tool itself").
    ...inputs.applets.map((name): CpioEntry => ({ type: 'symlink', path: `bin/${name}`, target: 'busybox' })),
    { type: 'file', path: 'init', mode: 0o755, data: inputs.init },
    ...inputs.modules.map(
      (module): CpioEntry => ({ type: 'file', path: `lib/modules/${module.name}`, mode: 0o644, data: module.data }),
    ),
    {
      type: 'file',
      path: 'lib/modules/order',
      mode: 0o644,
      data: Buffer.from(inputs.modules.map((module) => module.name + '\n').join('')),
    },
    ...inputs.guestRoot.map((entry): CpioEntry => ({ ...entry, path: `${GUEST_ROOT_SKELETON}/${entry.path}` })),
    { type: 'file', path: AGENT_RUNTIME_LIST, mode: 0o644, data: Buffer.from(runtimeList(inputs.agentRuntime)) },
    { type: 'file', path: AGENT_CHECKOUT_LIST, mode: 0o644, data: Buffer.from(inputs.agentCheckoutFiles.map((file) => `${file}\n`).join('')) },
  ];
}

/**
 * The applets a busybox binary has, from `busybox --list` (one name a line),
 * without sh, which the image links itself, and busybox, the binary's own
 * name. A name with a slash or an empty line is refused: it would make a link
 * outside /bin.
 */
export function parseBusyboxList(list: string): string[] {
  const names = list.split('\n').filter((name) => name !== '');
  const bad = names.find((name) => name.includes('/') || name === '.' || name === '..');
  if (bad !== undefined) throw new Error(`busybox --list gave '${bad}', not an applet name`);
  return names.filter((name) => name !== 'sh' && name !== 'busybox');
}

export function busyboxApplets(binary: string): string[] {
  const result = spawnSync(binary, ['--list'], { encoding: 'utf8' });
  if (result.status !== 0) throw new SetupError(`${binary} --list failed: ${(result.stderr ?? '').trim() || `status ${result.status}`}`);
  return parseBusyboxList(result.stdout);
}

export function readInitramfsInputs(version: string, initScript: string): InitramfsInputs {
  if (!existsSync(BUSYBOX)) throw new SetupError(`${BUSYBOX} not found: run \`make setup\` (installs busybox-static)`);
  const busybox = readFileSync(BUSYBOX);
  if (!isStaticElf(busybox)) {
    throw new SetupError(`${BUSYBOX} is dynamically linked: run \`make setup\` (installs busybox-static)`);
  }
  const modules = moduleOrder(version).map(readModule);
  return { busybox, init: readFileSync(initScript), modules, guestRoot: guestRootSkeleton(), applets: busyboxApplets(BUSYBOX), agentRuntime: agentRuntime(), agentCheckoutFiles: AGENT_CHECKOUT_FILES };
}

/**
 * Returns the path of an initramfs for these inputs, writing it only when no
 * image with the same content hash exists. Older images are removed.
 */
export function cachedInitramfs(inputs: InitramfsInputs, cacheDir: string): { path: string; built: boolean } {
  const image = writeCpio(initramfsManifest(inputs));
  const name = `initramfs-${createHash('sha256').update(image).digest('hex').slice(0, 16)}.cpio`;
  const target = path.join(cacheDir, name);
  if (existsSync(target)) return { path: target, built: false };
  mkdirSync(cacheDir, { recursive: true });
  // Older images only: another command may be writing its copy of this one right now.
  for (const stale of readdirSync(cacheDir).filter((file) => /^initramfs-[0-9a-f]+\.cpio$/.test(file) && file !== name)) {
    rmSync(path.join(cacheDir, stale), { force: true });
  }
  replaceAtomically(target, image);
  return { path: target, built: true };
}
