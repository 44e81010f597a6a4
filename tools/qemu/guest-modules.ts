/**
 * Kernel modules loaded and unloaded in the guest, the one way every command
 * and test does it: insmod for a .ko file, modprobe for one of the guest
 * kernel's own modules named bare (it loads what that one depends on, see
 * tools/profile.ts isModuleName), rmmod by name. Each answer says what the
 * tool printed, its status, and the kernel log lines logged while it ran: a
 * driver's own messages, or the reason the kernel refused a load.
 */
import path from 'node:path';
import { isModuleName } from '../profile.js';
import { type GuestClient, GuestError } from './guest-client.js';

export interface ModuleChange {
  argv: string[];
  /** The tool's exit status; null when a signal ended it. */
  code: number | null;
  /** What it printed, stdout and stderr in the order they came. */
  output: string;
  /** The kernel log lines logged while it ran, as dmesg prints them. */
  kernelLog: string[];
}

/** The name the kernel gives a module file: its base name, '-' read as '_'. */
export const moduleName = (ko: string): string => path.basename(ko, '.ko').replace(/-/g, '_');

async function runModuleTool(guest: GuestClient, argv: string[]): Promise<ModuleChange> {
  const { cursor } = await guest.kernelLog();
  const chunks: Uint8Array[] = [];
  const { code } = await guest.exec(argv, { onOutput: (event) => chunks.push(event.data) });
  const { lines } = await guest.kernelLog(cursor);
  return { argv, code, output: Buffer.concat(chunks).toString(), kernelLog: lines };
}

/** `params` as a profile writes them (profile key `moduleParams`): "name=value" words separated by spaces. */
export const loadArgv = (ko: string, params: string): string[] => [
  isModuleName(ko) ? 'modprobe' : 'insmod',
  ko,
  ...params.split(/\s+/).filter((word) => word !== ''),
];

/** Loads a module; a refused load is answered, not thrown (for the tests of refusals). */
export const attemptLoad = (guest: GuestClient, ko: string, params = ''): Promise<ModuleChange> => runModuleTool(guest, loadArgv(ko, params));

/** Unloads a module by name; a refusal (the module is in use) is answered, not thrown. */
export const attemptUnload = (guest: GuestClient, name: string): Promise<ModuleChange> => runModuleTool(guest, ['rmmod', name]);

function succeeded(change: ModuleChange): ModuleChange {
  if (change.code === 0) return change;
  const said = [change.output.trim(), ...change.kernelLog].filter((line) => line !== '').join('\n');
  throw new GuestError({ message: `${change.argv.join(' ')} failed (status ${String(change.code)}): ${said}` });
}

/** Loads a module; throws what the tool and the kernel said when it fails. */
export const loadModule = async (guest: GuestClient, ko: string, params = ''): Promise<ModuleChange> => succeeded(await attemptLoad(guest, ko, params));

/** Unloads a module by name; throws what rmmod and the kernel said when it fails. */
export const unloadModule = async (guest: GuestClient, name: string): Promise<ModuleChange> => succeeded(await attemptUnload(guest, name));

/** A module is in the kernel: live, built in, or on its way in or out (there is nothing to load). */
export async function isLoaded(guest: GuestClient, ko: string): Promise<boolean> {
  const name = moduleName(ko);
  // Every describe block asks: answering from sysfs through the agent spawns nothing.
  const state = await guest.readFile(`/sys/module/${name}/initstate`).catch(() => '');
  if (state.trim() === 'live') return true;
  // Built in (no initstate), or on its way in or out: /sys/module/<name> exists.
  return (await guest.exec(['test', '-d', `/sys/module/${name}`])).code === 0;
}

/** Loads a module unless it is there already (a test before may have unloaded it, or it is built in). */
export async function ensureModule(guest: GuestClient, ko: string, params = ''): Promise<void> {
  if (!(await isLoaded(guest, ko))) await loadModule(guest, ko, params);
}
