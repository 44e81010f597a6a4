/** `mmapkit vm run` and `mmapkit vm shell`: a guest for one command, or for a person at a shell. */
import path from 'node:path';
import type { GuestKernel } from '../kernel.js';
import { ExitCode, UserError } from '../exit-codes.js';
import { checkModule, loadProfile, profilesVm } from '../profile.js';
import { loadTargetModule } from '../test/preflight.js';
import { EXIT_CODE_OF } from '../qemu/outcome.js';
import { VmSession } from '../qemu/session.js';
import { moduleObject } from '../paths.js';
import { signalExitCode } from './interrupts.js';
import { printHelp, printMainHelp, reportEnd, say } from './messages.js';
import { VM_HELP, VM_OPTIONS, type VmFlags, ensureBuilt, forEachKernel, guestOptions, kernelOf, kernelsOf, parseOptions, withGuest } from './guest-command.js';

export const VM_RUN_HELP = `usage: mmapkit vm run [options] -- CMD [ARG...]

Boots the guest, loads the module, runs CMD (as root in the guest, which sees
/usr and the checkout read-only, a tmpfs /tmp, and writes only to
$MMAPKIT_OUT), streams its output and exits with its status.
  --no-module         do not load the module first
  --profile FILE      boot the VM a device profile needs (its qemuDevices) and
                      load the profile's module instead of the reference one
${VM_HELP}`;

export const VM_SHELL_HELP = `usage: mmapkit vm shell [options]

An interactive shell in the guest, with the module loaded. 'exit' powers the guest off.
  --no-module         do not load the module first
${VM_HELP}`;

/** `vm` takes a second word: run or shell. */
export function vmCommand([sub, ...args]: string[]): Promise<number> | number {
  if (sub === 'run') return vmRun(args);
  if (sub === 'shell') return vmShell(args);
  if (sub === undefined || sub === '-h' || sub === '--help') return printMainHelp();
  throw new UserError(`unknown vm command '${sub}' (try: vm run, vm shell)`);
}

async function vmRun(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    { ...VM_OPTIONS, 'no-module': { type: 'boolean', default: false }, profile: { type: 'string' } },
    true,
  );
  if (values.help) return printHelp(VM_RUN_HELP);
  if (positionals.length === 0) throw new UserError('vm run needs a command: mmapkit vm run -- CMD [ARG...]');
  return forEachKernel(kernelsOf(values), (kernel) => vmRunOn(kernel, values, positionals));
}

async function vmRunOn(kernel: GuestKernel, values: VmFlags & { profile?: string; 'no-module'?: boolean }, positionals: string[]): Promise<number> {
  const options = guestOptions(values, kernel);
  const profile = values.profile !== undefined ? loadProfile(path.resolve(values.profile), kernel.version) : undefined;
  await ensureBuilt(kernel);
  if (profile !== undefined) checkModule(profile, kernel.version);
  const loadReference = !values['no-module'] && profile === undefined;
  const outcome = await withGuest({ ...options, ...profilesVm(profile !== undefined ? [profile] : []), loadModule: loadReference }, async (session) => {
    if (profile !== undefined && !values['no-module']) await loadTargetModule(session.guest, profile);
    const result = await session.guest.exec(positionals, {
      timeoutMs: 0, // the run's own deadline (--timeout) bounds the command
      onOutput: (event) => (event.stream === 'stdout' ? process.stdout : process.stderr).write(event.data),
    });
    return result.code ?? signalExitCode(result.signal);
  });
  return outcome.ok ? outcome.value : outcome.exitCode;
}

async function vmShell(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { ...VM_OPTIONS, 'no-module': { type: 'boolean', default: false } });
  if (values.help) return printHelp(VM_SHELL_HELP);
  const kernel = kernelOf(values);
  const options = guestOptions(values, kernel);
  await ensureBuilt(kernel);
  say('starting the guest; type `exit` to power it off');
  const session = await VmSession.boot({
    ...options,
    mode: 'shell',
    ...(!values['no-module'] && { insmod: moduleObject(kernel.version) }),
  });
  const end = await session.ended;
  if (end.state === 'guest-crashed' || end.state === 'timed-out') {
    reportEnd(end, session);
    return EXIT_CODE_OF[end.state];
  }
  return ExitCode.PASSED;
}
