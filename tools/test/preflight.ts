/**
 * Before any case runs, `mmapkit test` brings each profile's target up once:
 * its module loads, its device node exists, the device opens. A target that
 * does not come up ends the run with one line and no case reported for it:
 * exit 2 when the profile names a device its driver does not make (a bad
 * profile), exit 3 when the module does not load or the device does not open
 * (a prerequisite the guest lacks: the hardware, a symbol, a parameter).
 * A profile with a "setup" also has its setup run once, and its object
 * released: a setup that fails is exit 3 with the step and its errno; an
 * object whose size is not the profile's "size" is a bad profile.
 */
import path from 'node:path';
import { ExitCode, SetupError, UserError } from '../exit-codes.js';
import type { Profile, ProfileSetup } from '../profile.js';
import type { SetupObject } from '../../guest/setup-api.js';
import { type GuestClient, GuestGoneError } from '../qemu/guest-client.js';
import { type ModuleChange, attemptLoad, isLoaded } from '../qemu/guest-modules.js';
import { setupBundlePath } from './setup-bundle.js';

/** What insmod (or modprobe) printed and the kernel lines the load caused, on one line, timestamps dropped. */
export function describeRefusal(change: ModuleChange): string {
  const kernel = change.kernelLog.map((line) => line.replace(/^\[\s*\d+\.\d+\]\s*/, '')).filter((line) => line !== '');
  const said = change.output.trim().replace(/\s*\n\s*/g, '; ') || `${change.argv[0] ?? 'the load'} exited with status ${String(change.code)}`;
  return kernel.length > 0 ? `${said} (kernel: ${kernel.join('; ')})` : said;
}

/** Loads the profile's module unless it is in; a refusal is one line, exit 3. */
export async function loadTargetModule(guest: GuestClient, profile: Profile): Promise<void> {
  const ko = profile.module;
  if (ko === undefined || (await isLoaded(guest, ko))) return;
  const change = await attemptLoad(guest, ko, profile.moduleParams);
  if (change.code !== 0) throw new SetupError(`${path.basename(profile.file)}: module ${ko} does not load: ${describeRefusal(change)}`);
}

/** Brings every profile's target up in the guest, in order; the first that fails ends the run. */
export async function bringUp(guest: GuestClient, profiles: readonly Profile[]): Promise<void> {
  const { O_RDONLY } = (await guest.ready).constants;
  for (const profile of profiles) {
    const where = path.basename(profile.file);
    await loadTargetModule(guest, profile);
    let fd: number;
    try {
      fd = await guest.native.open(profile.device, O_RDONLY);
    } catch (error) {
      if (error instanceof GuestGoneError) throw error; // a crash, which the caller reports as one
      const { code, message } = error as { code?: string; message: string };
      const after = profile.module !== undefined ? ` after ${path.basename(profile.module)} loaded` : '';
      if (code === 'ENOENT') throw new UserError(`${where}: device ${profile.device} does not exist${after}`, ExitCode.USAGE);
      throw new SetupError(`${where}: device ${profile.device} cannot be opened: ${code ?? message}`);
    }
    await guest.native.close(fd);
    if (profile.setup !== undefined) await tryTargetSetup(guest, profile, profile.setup);
  }
}

/** Runs the profile's setup once and releases its object. */
async function tryTargetSetup(guest: GuestClient, profile: Profile, { module, params }: ProfileSetup): Promise<void> {
  const where = path.basename(profile.file);
  const setup = path.basename(module);
  let object: SetupObject;
  try {
    object = await guest.targetOpen({ module: setupBundlePath(module), device: profile.device, params });
  } catch (error) {
    if (error instanceof GuestGoneError) throw error; // the setup took the guest down: a crash, not a refusal
    const { code, message } = error as { code?: string; message: string };
    const errno = code !== undefined && !message.includes(code) ? ` (${code})` : '';
    throw new SetupError(`${where}: setup ${setup} fails: ${message}${errno}`);
  }
  for (const fd of new Set(object.fds)) await guest.native.close(fd);
  if (profile.size !== undefined && BigInt(profile.size) !== object.size) {
    throw new UserError(`${where}: "size" is ${profile.size}, but setup ${setup} made an object of ${object.size} bytes`, ExitCode.USAGE);
  }
}
