/**
 * A profile describes a device to test: where it is, how to load its
 * driver, and the choices its driver makes where the mmap semantics
 * catalogue lets a driver choose. The suite runs every case a profile
 * allows and never fails a driver for a choice its profile declares.
 *
 * Profiles are JSON files; every key is checked, and a bad profile is a
 * usage error (exit 2) whose one line names the key or file at fault.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { SetupError, UserError } from './exit-codes.js';
import { PAGE_SIZE, compareReleases, isSeries, seriesOf } from './kernel.js';
import { REPO_ROOT, kernelBuildDir } from './paths.js';
import { QEMU_DEVICES, type QemuDeviceName } from './qemu/qemu-args.js';

export interface Profile {
  name: string;
  /** The device node in the guest. */
  device: string;
  /**
   * The driver to load first, if any: the absolute path of a .ko (insmod),
   * or the bare name of one of the guest kernel's own modules (modprobe).
   */
  module?: string;
  moduleParams: string;
  /**
   * Bytes mappable from `offset` on, a page multiple. Required for a fixed
   * region; for a setup profile the object's size comes from the setup, and
   * when the profile gives one too, the object must have that size.
   */
  size?: number;
  /** The mmap offset where the region starts (0 for a setup profile: the object's offset comes from the setup). */
  offset: number;
  /** The object to map is made by this setup, in the guest, per case (guest/setup-api.ts). */
  setup?: ProfileSetup;
  /** An mmap at an offset inside the region (`offset` + k pages) maps from page k; false: only from the region's start. */
  interiorOffsets: boolean;
  /** Cases the driver fails by a choice the catalogue calls a bug: reported as findings, and the run fails if one disappears or changes. */
  knownFindings: KnownFinding[];
  /** Shared writable mappings of an O_RDWR fd are allowed. */
  writable: boolean;
  /** Content right after load: all zero, or anything the device defines. */
  initial: 'zero' | 'any';
  /** PTEs all built at mmap time, one per first touch, or either. */
  population: 'prefault' | 'on-demand' | 'any';
  /** MAP_PRIVATE with PROT_READ|PROT_WRITE on an O_RDWR fd: copy-on-write, refused, or either. */
  private: 'cow' | 'rejected' | 'any';
  /**
   * A PROT_NONE mapping: made like any other ("mapped"), or refused by the
   * driver with EINVAL ("rejected"), as vb2_mmap does on a capture queue
   * (it wants VM_READ) and snd_pcm_mmap_data does (it wants VM_READ or
   * VM_WRITE): their buffers are mapped to be read or written, per their API.
   */
  protNone: 'mapped' | 'rejected';
  /** read() and write() at an offset mirror the mapping. */
  readWrite: boolean;
  /**
   * Another device over the same memory that can be mapped writable, so that
   * cases can put a pattern in place for a device that cannot be written.
   */
  writer?: string;
  /**
   * The region is device memory (MMIO) that the driver maps with one
   * (io_)remap_pfn_range over the whole VMA. On x86 the 6.1 kernel's PAT
   * tracking then logs "x86/PAT: ... freeing invalid memtype" whenever part
   * of such a mapping is unmapped (catalogue F7; arch/x86/mm/pat/memtype.c:
   * untrack_pfn frees a sub-range of a range reserved whole): the kernel's
   * behaviour, not the driver's, so the log gate reports that line instead
   * of failing the case. Every other finding still fails it.
   */
  mmio: boolean;
  /** Devices the guest must have for this profile, added to the VM of `mmapkit test` (QEMU_DEVICES). */
  qemuDevices: QemuDeviceName[];
  /**
   * Let the kernel's framebuffer console take over the framebuffers of those
   * devices, as on a machine whose console is its display: fbcon then draws
   * into /dev/fb0 (its cursor blinks), the region changes on its own and the
   * content cases skip (tools/test/region-record.ts). Off by default.
   */
  console: boolean;
  /**
   * The oldest kernel series the profile applies to ("6.12"): its driver is
   * not built into older ones (Debian's 6.1 has no udmabuf, no DMA-BUF
   * heaps). Running it on an older kernel is a missing prerequisite (exit 3)
   * said before anything boots. Default: every series.
   */
  minSeries?: string;
  /** The file it came from. */
  file: string;
}

/** A profile's "setup" and "setupParams": the module's absolute path on the host, and the parameters it is given. */
export interface ProfileSetup {
  module: string;
  params: Record<string, unknown>;
}

/**
 * A case the driver fails for a reason the catalogue calls a bug, known and
 * explained: the case's failure becomes a reported finding, as long as its
 * message matches `match`; a pass, or another failure, fails the run.
 */
export interface KnownFinding {
  /** The case's title, as the report prints it after the area ("a whole-device map reads zero right after load"). */
  case: string;
  /** What the driver does, with the evidence and the kernel source that explains it (function and series). */
  finding: string;
  /** A regular expression the case's failure message must match (the finding's evidence). */
  match: string;
  /** The kernel series it is known on (e.g. ["6.1"]); on any other the case must pass as for any driver. Default: every series. */
  series?: string[];
}

type Check = (value: unknown) => boolean;

const isString: Check = (value) => typeof value === 'string' && value !== '';
const isBoolean: Check = (value) => typeof value === 'boolean';
const isCount: Check = (value) => Number.isSafeInteger(value) && (value as number) >= 0;
const oneOf = (...allowed: string[]): Check => (value) => typeof value === 'string' && allowed.includes(value);
const listOf = (allowed: readonly string[]): Check => (value) =>
  Array.isArray(value) && value.every((item) => typeof item === 'string' && allowed.includes(item)) && new Set(value).size === value.length;

const isObject: Check = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);
const isRegExp = (value: unknown): boolean => {
  try {
    return typeof value === 'string' && value !== '' && new RegExp(value) instanceof RegExp;
  } catch {
    return false;
  }
};
const isKnownFinding: Check = (value) =>
  isObject(value) &&
  Object.keys(value as object).every((key) => ['case', 'finding', 'match', 'series'].includes(key)) &&
  ((value as KnownFinding).series === undefined || (Array.isArray((value as KnownFinding).series) && (value as KnownFinding).series!.every((item) => typeof item === 'string' && isSeries(item)))) &&
  isString((value as KnownFinding).case) &&
  isString((value as KnownFinding).finding) &&
  isRegExp((value as KnownFinding).match);

/** A module named without a path or .ko: one of the guest kernel's own, loaded with modprobe. */
export const isModuleName = (module: string): boolean => /^[A-Za-z0-9_-]+$/.test(module);

/** Every key a profile may have: its check, what the check means, and its default when optional. */
const KEYS: Record<string, { check: Check; expected: string; fallback?: unknown }> = {
  name: { check: isString, expected: 'a non-empty string' },
  device: { check: (value) => isString(value) && (value as string).startsWith('/'), expected: 'an absolute path' },
  module: { check: isString, expected: 'a path to a .ko or a module name', fallback: undefined },
  moduleParams: { check: (value) => typeof value === 'string', expected: 'a string', fallback: '' },
  size: { check: (value) => isCount(value) && (value as number) > 0, expected: 'a positive number of bytes', fallback: undefined },
  offset: { check: isCount, expected: 'a number of bytes', fallback: 0 },
  writable: { check: isBoolean, expected: 'true or false', fallback: false },
  initial: { check: oneOf('zero', 'any'), expected: '"zero" or "any"', fallback: 'any' },
  population: { check: oneOf('prefault', 'on-demand', 'any'), expected: '"prefault", "on-demand" or "any"', fallback: 'any' },
  private: { check: oneOf('cow', 'rejected', 'any'), expected: '"cow", "rejected" or "any"', fallback: 'any' },
  protNone: { check: oneOf('mapped', 'rejected'), expected: '"mapped" or "rejected"', fallback: 'mapped' },
  readWrite: { check: isBoolean, expected: 'true or false', fallback: false },
  writer: { check: (value) => isString(value) && (value as string).startsWith('/'), expected: 'an absolute path', fallback: undefined },
  mmio: { check: isBoolean, expected: 'true or false', fallback: false },
  setup: { check: (value) => isString(value) && /\.(ts|mts|js|mjs)$/.test(value as string), expected: 'a path to a TypeScript or JavaScript module', fallback: undefined },
  setupParams: { check: isObject, expected: 'an object', fallback: undefined },
  interiorOffsets: { check: isBoolean, expected: 'true or false', fallback: true },
  knownFindings: {
    check: (value) => Array.isArray(value) && value.every(isKnownFinding) && new Set(value.map((item: KnownFinding) => item.case)).size === value.length,
    expected: 'a list of {"case", "finding", "match", "series"?} (non-empty strings, match a regular expression, series a list like ["6.1"]), one per case',
    fallback: [],
  },
  qemuDevices: { check: listOf(QEMU_DEVICES), expected: `a list of distinct names out of ${QEMU_DEVICES.map((name) => `"${name}"`).join(', ')}`, fallback: [] },
  console: { check: isBoolean, expected: 'true or false', fallback: false },
  minSeries: { check: (value) => typeof value === 'string' && isSeries(value), expected: 'a kernel series like "6.12"', fallback: undefined },
};

/**
 * Where a profile's "module" points. "@build/..." is relative to the guest
 * kernel's build directory (build/kernels/<release>/), so one profile serves
 * every kernel the tree is built for; anything else is relative to the
 * profile file. A bare name (no "/", no ".ko") is a module of the guest
 * kernel's own tree (/lib/modules/<release>), loaded with modprobe.
 */
export function resolveModule(module: string, profileFile: string, kernelVersion: string): string {
  if (isModuleName(module)) return module;
  if (module.startsWith('@build/')) return path.join(kernelBuildDir(kernelVersion), module.slice('@build/'.length));
  return path.resolve(path.dirname(profileFile), module);
}

/**
 * The host files a profile names: its module, unless that is a module of the
 * guest kernel's own tree. Wherever they lie (/root, /tmp, /home), the guest
 * sees them at the same paths, read-only (tools/qemu/guest-view.ts).
 */
export const profileFiles = (profile: Pick<Profile, 'module'>): string[] =>
  profile.module !== undefined && !isModuleName(profile.module) ? [profile.module] : [];

/** The kernel release a .ko (or a module of that release's tree, by name) was built for, from its vermagic. */
export function moduleRelease(ko: string, kernelVersion?: string): string | undefined {
  const release = kernelVersion !== undefined && isModuleName(ko) ? ['-k', kernelVersion] : [];
  const result = spawnSync('modinfo', [...release, '-F', 'vermagic', ko], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim().split(/\s+/)[0] : undefined;
}

/** Validates parsed JSON as a profile; `file` names it in errors. */
export function parseProfile(json: unknown, file: string, kernelVersion: string): Profile {
  const where = path.basename(file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UserError(`${where}: a profile is a JSON object`);
  }
  const record = json as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(key in KEYS)) throw new UserError(`${where}: unknown key "${key}" (known: ${Object.keys(KEYS).join(', ')})`);
  }
  const values: Record<string, unknown> = {};
  for (const [key, rule] of Object.entries(KEYS)) {
    const value = record[key];
    if (value === undefined) {
      if (!('fallback' in rule)) throw new UserError(`${where}: missing required key "${key}"`);
      values[key] = rule.fallback;
    } else if (!rule.check(value)) {
      throw new UserError(`${where}: "${key}" must be ${rule.expected}, not ${JSON.stringify(value)}`);
    } else {
      values[key] = value;
    }
  }
  for (const key of ['size', 'offset'] as const) {
    if (values[key] !== undefined && (values[key] as number) % PAGE_SIZE !== 0) throw new UserError(`${where}: "${key}" must be a multiple of ${PAGE_SIZE}`);
  }
  const { setup, setupParams, ...rest } = values;
  checkSetupKeys(where, record);
  checkSeries(where, values.minSeries as string | undefined, kernelVersion);
  const profile = { ...rest, file } as Profile;
  if (setup !== undefined) profile.setup = { module: path.resolve(path.dirname(file), setup as string), params: (setupParams ?? {}) as Record<string, unknown> };
  if (profile.module !== undefined) profile.module = resolveModule(profile.module, file, kernelVersion);
  return profile;
}

/**
 * A setup profile's object has its own offset, size and memory: the keys
 * that describe a fixed region of the node (where it starts, another
 * device over it, read()/write() at its file offsets) do not apply.
 */
function checkSetupKeys(where: string, record: Record<string, unknown>): void {
  if (record.setup === undefined) {
    if (record.setupParams !== undefined) throw new UserError(`${where}: "setupParams" needs "setup"`);
    if (record.size === undefined) throw new UserError(`${where}: missing required key "size" (or a "setup" that makes the object to map)`);
    return;
  }
  for (const key of ['offset', 'writer', 'readWrite'] as const) {
    if (record[key] !== undefined) throw new UserError(`${where}: "${key}" describes a fixed region of the node; a "setup" profile's object has its own (remove "${key}")`);
  }
}

/** A profile whose driver the guest kernel does not have is refused before anything is built or booted. */
function checkSeries(where: string, minSeries: string | undefined, kernelVersion: string): void {
  if (minSeries === undefined) return;
  const series = seriesOf(kernelVersion);
  if (compareReleases(series, minSeries) < 0) {
    throw new SetupError(`${where}: needs kernel series >= ${minSeries} (its driver is not in ${kernelVersion}): run it with --kernel ${minSeries}`);
  }
}

/** Reads and validates a profile file, and checks that its module exists and was built for this kernel. */
export function loadProfile(file: string, kernelVersion: string): Profile {
  if (!existsSync(file)) throw new UserError(`profile ${file} does not exist`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UserError(`${path.basename(file)}: not valid JSON (${(error as Error).message})`);
  }
  return parseProfile(json, file, kernelVersion);
}

/** A module must exist and carry this kernel's vermagic, or insmod fails with a less helpful message. */
export function checkModule(profile: Profile, kernelVersion: string): void {
  const ko = profile.module;
  if (ko === undefined) return;
  const where = path.basename(profile.file);
  if (isModuleName(ko)) {
    if (moduleRelease(ko, kernelVersion) !== kernelVersion) {
      throw new UserError(`${where}: "module" ${ko} is not a module of the guest kernel ${kernelVersion} (modinfo -k ${kernelVersion} ${ko})`);
    }
    return;
  }
  if (!existsSync(ko)) throw new UserError(`${where}: "module" ${ko} does not exist (not built?)`);
  const release = moduleRelease(ko);
  if (release !== kernelVersion) {
    throw new UserError(`${where}: "module" ${ko} was built for ${release ?? 'an unknown kernel'}, not ${kernelVersion}`);
  }
}

/**
 * What the profiles of one run ask of the VM they share: the union of their
 * devices, a framebuffer console if any asks for one, and their host files.
 */
export function profilesVm(profiles: readonly Profile[]): { qemuDevices?: QemuDeviceName[]; framebufferConsole?: true; hostFiles?: string[] } {
  const qemuDevices = [...new Set(profiles.flatMap((profile) => profile.qemuDevices))];
  // Files the profiles name outside the checkout and /usr: the guest gets read-only copies.
  const hostFiles = profiles.flatMap(profileFiles);
  return {
    ...(qemuDevices.length > 0 && { qemuDevices }),
    ...(profiles.some((profile) => profile.console) && { framebufferConsole: true as const }),
    ...(hostFiles.length > 0 && { hostFiles }),
  };
}

/** The reference driver's profiles, which `make run` and a plain `mmapkit test` use. */
export const REFERENCE_PROFILES_DIR = path.join(REPO_ROOT, 'test', 'profiles');

export function referenceProfiles(kernelVersion: string): Profile[] {
  return readdirSync(REFERENCE_PROFILES_DIR)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => loadProfile(path.join(REFERENCE_PROFILES_DIR, name), kernelVersion));
}

/** How `mmapkit test` hands its validated profiles to the suite's global setup. */
export const PROFILES_ENV = 'MMAPKIT_PROFILES';
