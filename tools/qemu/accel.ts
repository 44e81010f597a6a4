/**
 * Which accelerator a guest boots with, and when a boot is tried again.
 * `auto` means KVM when /dev/kvm is usable and a short probe boot reaches the
 * agent (a KVM guest either does so in seconds or hangs, as it does on this
 * project's machines), TCG otherwise. Instruction counting forces TCG on one
 * vCPU. A TCG boot whose kernel crashed before init is booted once more.
 */
import { accessSync, constants } from 'node:fs';
import { UserError } from '../exit-codes.js';
import { FATAL_KINDS } from './console.js';
import { SessionEndedError } from './outcome.js';
import type { Accelerator } from './qemu-args.js';

export type AccelChoice = Accelerator | 'auto';

const KVM_PROBE_TIMEOUT_S = 8;

/** What the policy reads and adjusts of a session's settings. */
export interface AccelSettings {
  accel: AccelChoice;
  cpus: number;
  bootTimeoutS: number;
  icount?: number;
  log?: (line: string) => void;
}

function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The settings that instruction counting needs (TCG, one vCPU); refuses it with KVM. */
export function icountSettings<T extends AccelSettings>(settings: T): T {
  if (settings.icount === undefined) return settings;
  // QEMU refuses -icount with a hardware accelerator; 'auto' means TCG here.
  if (settings.accel === 'kvm') throw new UserError('instruction counting (icount) needs --accel tcg');
  // One vCPU: QEMU 7.2 with -icount and -smp 2 hangs before the guest's
  // first console line here, and one CPU is what makes counts repeat.
  return { ...settings, accel: 'tcg', cpus: 1 };
}

/** Boots with the accelerator the settings ask for, probing KVM first for 'auto'. */
export async function bootOnAccelerator<T extends AccelSettings, S>(settings: T, bootWith: (accel: Accelerator, settings: T) => Promise<S>): Promise<S> {
  const boot = (accel: Accelerator, chosen: T): Promise<S> => bootAgainAfterEarlyCrash(accel, chosen, bootWith);
  if (settings.accel !== 'auto') return boot(settings.accel, settings);
  if (!kvmUsable()) {
    settings.log?.('accelerator: tcg (/dev/kvm is not usable)');
    return boot('tcg', settings);
  }
  try {
    const probe = await boot('kvm', { ...settings, bootTimeoutS: KVM_PROBE_TIMEOUT_S });
    settings.log?.('accelerator: kvm (the probe boot reached the guest agent)');
    return probe;
  } catch (error) {
    if (!(error instanceof SessionEndedError)) throw error;
    settings.log?.(`accelerator: tcg (the KVM probe boot failed: ${error.end.reason})`);
  }
  return boot('tcg', settings);
}

/**
 * 6.12 under multi-threaded TCG now and then oopses on an int3 in early boot (a
 * text_poke_bp race between the emulated CPUs), before init or any module of ours ran:
 * nothing under test is involved, so one more boot is the honest answer. Once only,
 * so that a kernel that cannot boot still fails.
 */
async function bootAgainAfterEarlyCrash<T extends AccelSettings, S>(accel: Accelerator, settings: T, bootWith: (accel: Accelerator, settings: T) => Promise<S>): Promise<S> {
  try {
    return await bootWith(accel, settings);
  } catch (error) {
    if (!(error instanceof SessionEndedError) || accel !== 'tcg' || error.end.state !== 'boot-failed') throw error;
    if (!error.session.findings().some((finding) => FATAL_KINDS.has(finding.kind))) throw error;
    settings.log?.(`${error.end.reason} (console: ${error.session.consoleLog}); booting once more`);
    return bootWith(accel, settings);
  }
}
