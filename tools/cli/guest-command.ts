/**
 * What every command that boots a guest shares: the kernel and VM options,
 * their parsing into one-line usage errors, and the run of some work in a
 * booted guest, where a crashed, hung or unbootable guest decides the exit
 * code before the work's own result or failure does.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { type BuildOptions, build } from '../builder/build.js';
import { UserError } from '../exit-codes.js';
import { type GuestKernel, discoverKernel, discoverKernels } from '../kernel.js';
import { reportEnd, say } from './messages.js';
import { type GuestRunOptions, startGuest } from '../qemu/guest-run.js';
import { EXIT_CODE_OF } from '../qemu/outcome.js';
import type { AccelChoice } from '../qemu/accel.js';
import type { VmSession } from '../qemu/session.js';

export const VM_OPTIONS = {
  kernel: { type: 'string' },
  kernels: { type: 'string' },
  kdir: { type: 'string' },
  accel: { type: 'string', default: 'tcg' },
  'boot-timeout': { type: 'string' },
  'request-timeout': { type: 'string' },
  timeout: { type: 'string' },
  console: { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export const VM_HELP = `
Kernel and VM options:
  --kernel K          guest kernel: a series (6.1, 6.12: its newest release in /boot), a release
                      (as in /boot/vmlinuz-REL) or an image path (default: newest 6.1)
  --kernels LIST      (vm run, test, trace, explain) run once per kernel: all (every installed series) or a
                      comma list, e.g. 6.1,6.12; one summary per kernel, then a combined verdict
  --kdir DIR          kernel headers to build against (default: /usr/src/linux-headers-REL)
  --accel MODE        tcg (default), kvm, or auto (KVM only if a probe boot reaches the guest)
  --boot-timeout S    give up if the guest agent is not up after S seconds (default: 60, times how
                      much slower than 5.8 s this machine's last boot of the kernel was)
  --request-timeout S presume the guest hung when one request takes longer than S seconds (default:
                      60, 20 for test, times how much slower than 5.8 s this guest's boot was)
  --timeout S         deadline for the whole run, boot included (default: none)
  --console           echo the guest console to stderr while it runs
  --keep              keep the run's temp directory (agent socket) and inputs/ for inspection
  -h, --help          this help`;

export interface VmFlags {
  kernel?: string;
  kernels?: string;
  kdir?: string;
  accel?: string;
  'boot-timeout'?: string;
  'request-timeout'?: string;
  timeout?: string;
  console?: boolean;
  keep?: boolean;
}

/** node:util parseArgs, strict, with its errors as usage errors. */
export function parseOptions<T extends ParseArgsConfig['options']>(args: string[], options: T, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (error) {
    throw new UserError((error as Error).message);
  }
}

export function positiveNumber(value: string | undefined, flag: string, what = 'number of seconds'): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  const integer = what.includes('whole');
  if (!Number.isFinite(parsed) || parsed <= 0 || (integer && !Number.isInteger(parsed))) {
    throw new UserError(`${flag} takes a positive ${what}, not '${value}'`);
  }
  return parsed;
}

/** The longest delay Node's timers hold, 2^31-1 ms (about 24.8 days), in whole seconds: a longer one fires at once. */
export const MAX_TIMEOUT_S = Math.floor((2 ** 31 - 1) / 1000);

/** A deadline option in seconds: positive, and no longer than a timer can wait. */
export function timeoutSeconds(value: string | undefined, flag: string): number | undefined {
  const seconds = positiveNumber(value, flag);
  if (seconds !== undefined && seconds > MAX_TIMEOUT_S) {
    throw new UserError(`${flag} takes at most ${MAX_TIMEOUT_S} seconds (about 24 days, the longest timer Node can set), not '${value}'`);
  }
  return seconds;
}

export function accelOf(value: string | undefined): AccelChoice {
  if (value === 'tcg' || value === 'kvm' || value === 'auto') return value;
  throw new UserError(`--accel takes auto, tcg or kvm, not '${String(value)}'`);
}

export function kernelOf(flags: VmFlags): GuestKernel {
  if (flags.kernels !== undefined) throw new UserError('this command runs on one kernel: use --kernel (--kernels is for build, lint, vm run, test, trace and explain)');
  return discoverKernel({ kernel: flags.kernel, kdir: flags.kdir });
}

/**
 * The kernels a command runs on: `--kernels all` (every installed series) or
 * a comma list, else the one `--kernel` names (default: the 6.1 series).
 */
export function kernelsOf(flags: VmFlags): GuestKernel[] {
  if (flags.kernels === undefined) return [kernelOf(flags)];
  if (flags.kernel !== undefined || flags.kdir !== undefined) throw new UserError('--kernels cannot be combined with --kernel or --kdir');
  const names = flags.kernels.split(',').map((name) => name.trim());
  if (names.some((name) => name === '')) throw new UserError(`--kernels takes all or a comma list of series or releases, not '${flags.kernels}'`);
  return discoverKernels(flags.kernels === 'all' ? 'all' : names);
}

/**
 * Runs a command once per kernel, one after another, and gives the combined
 * verdict: a line per kernel, and the worst exit code (a crash, boot failure
 * or timeout outranks failed cases, which outrank a pass).
 */
export async function forEachKernel(kernels: GuestKernel[], run: (kernel: GuestKernel) => Promise<number>): Promise<number> {
  if (kernels.length === 1) return run(kernels[0]!);
  const verdicts: { kernel: GuestKernel; code: number }[] = [];
  for (const kernel of kernels) {
    process.stdout.write(`\n=== kernel ${kernel.version} (series ${kernel.series}) ===\n`);
    try {
      verdicts.push({ kernel, code: await run(kernel) });
    } catch (error) {
      // One kernel's missing headers or failed build must not hide the other kernels' results.
      if (!(error instanceof UserError)) throw error;
      say(error.message);
      verdicts.push({ kernel, code: error.exitCode });
    }
  }
  const worst = Math.max(...verdicts.map(({ code }) => code));
  process.stdout.write(
    `\n${verdicts.map(({ kernel, code }) => `kernel ${kernel.version}: ${code === 0 ? 'passed' : `failed (exit ${code})`}`).join('\n')}\n` +
      `all kernels: ${worst === 0 ? 'passed' : 'failed'}\n`,
  );
  return worst;
}

/** Everything a guest needs from the flags; invalid values fail here, before anything is built or booted. */
export function guestOptions(flags: VmFlags, kernel: GuestKernel): GuestRunOptions {
  const bootTimeoutS = timeoutSeconds(flags['boot-timeout'], '--boot-timeout');
  const requestTimeoutS = timeoutSeconds(flags['request-timeout'], '--request-timeout');
  const runTimeoutS = timeoutSeconds(flags.timeout, '--timeout');
  return {
    kernel,
    accel: accelOf(flags.accel),
    keep: flags.keep === true,
    showConsole: flags.console === true,
    ...(bootTimeoutS !== undefined && { bootTimeoutS }),
    ...(requestTimeoutS !== undefined && { requestTimeoutS }),
    ...(runTimeoutS !== undefined && { runTimeoutS }),
    log: say,
  };
}

/** Builds what is stale (`only`: BuildOptions); says nothing when nothing was. */
export async function ensureBuilt(kernel: GuestKernel, only?: BuildOptions['only']): Promise<void> {
  await build({ kernel, log: (line) => (line.includes('nothing to do') ? undefined : say(line)), ...(only !== undefined && { only }) });
}

export type GuestOutcome<T> = { ok: true; value: T; session: VmSession } | { ok: false; exitCode: number };

/**
 * Boots a guest, runs `work` in it and stops it. If the guest did not end
 * cleanly its end state is reported and becomes the exit code, whatever the
 * work returned or threw; otherwise the work's value (or its error) stands.
 */
export async function withGuest<T>(options: GuestRunOptions, work: (session: VmSession) => Promise<T>): Promise<GuestOutcome<T>> {
  const session = await startGuest(options);
  let done: { value: T } | undefined;
  let failure: unknown;
  try {
    done = { value: await work(session) };
  } catch (error) {
    failure = error;
  }
  const end = await session.stop();
  if (end.state !== 'completed') {
    reportEnd(end, session);
    return { ok: false, exitCode: EXIT_CODE_OF[end.state] };
  }
  if (done === undefined) throw failure;
  return { ok: true, value: done.value, session };
}
