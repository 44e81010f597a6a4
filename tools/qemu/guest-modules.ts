/**
 * Kernel modules loaded and unloaded in the guest, the one way every command
 * and test does it: a .ko file as insmod loads it, by finit_module(2), and a
 * module by name as rmmod unloads it, by delete_module(2, O_NONBLOCK), both
 * made by the agent itself (no process to start); modprobe for one of the
 * guest kernel's own modules named bare (it loads what that one depends on,
 * see tools/profile.ts isModuleName). Each answer says what the tool printed
 * (or the errno the kernel refused with), its status, and the kernel log
 * lines logged meanwhile: a driver's own messages, or the reason the kernel
 * refused a load.
 */
import path from 'node:path';
import { isModuleName } from '../profile.js';
import { type GuestClient, GuestError } from './guest-client.js';

export interface ModuleChange {
  /** The command line that makes the change (insmod's or rmmod's, though the system call made it). */
  argv: string[];
  /** The tool's exit status, or 0 or 1 for the system call, as the tool's; null when a signal ended the tool. */
  code: number | null;
  /** What the tool printed, stdout and stderr in the order they came; for the system call, its errno line. */
  output: string;
  /** The kernel log lines logged while it ran, as dmesg prints them. */
  kernelLog: string[];
}

/** The name the kernel gives a module file: its base name, '-' read as '_'. */
export const moduleName = (ko: string): string => path.basename(ko, '.ko').replace(/-/g, '_');

type Change = Pick<ModuleChange, 'code' | 'output'>;

/** The change, with the kernel log lines logged while `change` made it. */
async function logged(guest: GuestClient, argv: string[], change: () => Promise<Change>): Promise<ModuleChange> {
  const { cursor } = await guest.kernelLog();
  const { code, output } = await change();
  const { lines } = await guest.kernelLog(cursor);
  return { argv, code, output, kernelLog: lines };
}

async function runTool(guest: GuestClient, argv: string[]): Promise<Change> {
  const chunks: Uint8Array[] = [];
  const { code } = await guest.exec(argv, { onOutput: (event) => chunks.push(event.data) });
  return { code, output: Buffer.concat(chunks).toString() };
}

/**
 * What an errno of finit_module(2) or delete_module(2) means for a module, in insmod's and rmmod's
 * words (kmod's mod_strerror): ENOENT from a load is an unknown symbol, not a missing file.
 */
const MEANINGS = {
  load: { ENOEXEC: 'Invalid module format', ENOENT: 'Unknown symbol in module, or unknown parameter', ESRCH: 'Module has wrong symbol version', EINVAL: 'Invalid parameters' },
  unload: { EAGAIN: 'Module is in use', ENOENT: 'Module is not loaded', EBUSY: 'Module has no exit function' },
} as const satisfies Record<string, Record<string, string>>;

/**
 * A system call's refusal as the tool's status 1, said as the tool would, then the errno as the
 * kernel gave it: "could not insert module: Invalid parameters (EINVAL: Invalid argument,
 * finit_module)". The guest gone is thrown.
 */
async function syscallChange(kind: keyof typeof MEANINGS, call: () => Promise<void>): Promise<Change> {
  try {
    await call();
    return { code: 0, output: '' };
  } catch (error) {
    if (!(error instanceof GuestError)) throw error;
    const meanings: Readonly<Record<string, string>> = MEANINGS[kind];
    const meaning = error.code !== undefined && error.syscall !== 'open' ? meanings[error.code] : undefined;
    const verb = kind === 'load' ? 'could not insert module' : 'could not remove module';
    return { code: 1, output: `${verb}: ${meaning !== undefined ? `${meaning} (${error.message})` : error.message}\n` };
  }
}

/**
 * insmod's own system call, made by the agent. Under TCG a restored guest's first
 * insmod reads the tool and its libraries over 9p; each exec is a fork of the
 * agent. A file that cannot be opened is refused as insmod refuses it.
 */
async function finitModule(guest: GuestClient, ko: string, params: string): Promise<Change> {
  const { O_RDONLY } = (await guest.ready).constants;
  let fd: number | undefined;
  try {
    return await syscallChange('load', async () => {
      fd = await guest.native.open(ko, O_RDONLY);
      await guest.native.finitModule(fd, params, 0);
    });
  } finally {
    if (fd !== undefined) await guest.native.close(fd).catch(() => undefined);
  }
}

/** rmmod's own system call, made by the agent: O_NONBLOCK, as rmmod makes it, so a module in use is refused (EAGAIN), not waited for. */
async function deleteModule(guest: GuestClient, name: string): Promise<Change> {
  const { O_NONBLOCK } = (await guest.ready).constants;
  return syscallChange('unload', () => guest.native.deleteModule(name, O_NONBLOCK));
}

/** A .ko file; insmod also takes compressed ones (.ko.xz), which finit_module(2) takes only with a flag 6.1 lacks. */
const isModuleFile = (ko: string): boolean => !isModuleName(ko) && ko.endsWith('.ko');

/** `params` as a profile writes them (profile key `moduleParams`): "name=value" words separated by spaces. */
export const loadArgv = (ko: string, params: string): string[] => [
  isModuleName(ko) ? 'modprobe' : 'insmod',
  ko,
  ...params.split(/\s+/).filter((word) => word !== ''),
];

/** Loads a module; a refused load is answered, not thrown (for the tests of refusals). */
export function attemptLoad(guest: GuestClient, ko: string, params = ''): Promise<ModuleChange> {
  const argv = loadArgv(ko, params);
  return logged(guest, argv, () => (isModuleFile(ko) ? finitModule(guest, ko, argv.slice(2).join(' ')) : runTool(guest, argv)));
}

/** Unloads a module by name; a refusal (the module is in use) is answered, not thrown. */
export const attemptUnload = (guest: GuestClient, name: string): Promise<ModuleChange> => logged(guest, ['rmmod', name], () => deleteModule(guest, name));

function succeeded(change: ModuleChange): ModuleChange {
  if (change.code === 0) return change;
  const said = [change.output.trim(), ...change.kernelLog].filter((line) => line !== '').join('\n');
  throw new GuestError({ message: `${change.argv.join(' ')} failed (status ${String(change.code)}): ${said}` });
}

/** Loads a module; throws what the tool and the kernel said when it fails. */
export const loadModule = async (guest: GuestClient, ko: string, params = ''): Promise<ModuleChange> => succeeded(await attemptLoad(guest, ko, params));

/** Unloads a module by name; throws what the kernel said when it fails. */
export const unloadModule = async (guest: GuestClient, name: string): Promise<ModuleChange> => succeeded(await attemptUnload(guest, name));

/** A module is in the kernel: live, built in, or on its way in or out (there is nothing to load). */
export async function isLoaded(guest: GuestClient, ko: string): Promise<boolean> {
  const name = moduleName(ko);
  // Every describe block asks: answering from sysfs through the agent spawns nothing.
  const state = await guest.readFile(`/sys/module/${name}/initstate`).catch(() => '');
  if (state.trim() === 'live') return true;
  // Built in (no initstate), or on its way in or out: /sys/module/<name> exists.
  return guest.exists(`/sys/module/${name}`);
}

/** Loads a module unless it is there already (a test before may have unloaded it, or it is built in). */
export async function ensureModule(guest: GuestClient, ko: string, params = ''): Promise<void> {
  if (!(await isLoaded(guest, ko))) await loadModule(guest, ko, params);
}
