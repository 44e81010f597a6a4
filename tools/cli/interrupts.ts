/**
 * How mmapkit ends when it is told to stop: SIGINT, SIGTERM or SIGHUP, or
 * its parent going away. Every process it started (QEMU, a build's make and
 * compilers, vitest's workers, the build lock's holder) is killed, the exit
 * hooks remove the run's temp directory and sockets, and the exit code is
 * 128 + the signal's number, as a shell reports it.
 *
 * The parent matters because of the documented entry points. `npx mmapkit`
 * runs us as npm's child: npm forwards SIGINT and SIGTERM to the child it
 * spawned (with .npmrc's script-shell=bash that child is this process, since
 * bash execs a lone command), but dies of SIGHUP without forwarding it. A
 * parent that dies leaves us orphaned, still running the guest; noticing it
 * is the only sign we get, so it counts as a hang-up.
 *
 * `make run` forwards SIGTERM only. On SIGINT or SIGHUP GNU make resets that
 * signal to its default action and waits for its children, which would
 * otherwise run to the end: so with make as the parent, a signal make
 * stopped catching is taken as sent to us.
 */
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const PARENT_POLL_MS = 500;

/** A process killed by a signal exits 128 + its number, as in a shell. */
export function signalExitCode(signal: string | null): number {
  const number = signal !== null ? os.constants.signals[signal as NodeJS.Signals] : undefined;
  return 128 + (number ?? 0);
}

/** The parent's pid from /proc/PID/stat (process.ppid is read once at start-up), or undefined if unreadable. */
export function parentOf(pid: number | 'self' = 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** Which of SIGNALS a process catches (SigCgt in /proc/PID/status); undefined if unreadable. */
export function caughtSignals(pid: number): Set<NodeJS.Signals> | undefined {
  try {
    const mask = BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0'}`);
    return new Set(SIGNALS.filter((name) => (mask >> BigInt(os.constants.signals[name] - 1)) & 1n));
  } catch {
    return undefined;
  }
}

const commandOf = (pid: number): string | undefined => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** Every process below `root`, parents before their children. */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentOf(Number(entry));
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  for (let queue = [root]; queue.length > 0; ) {
    const next = children.get(queue.shift()!) ?? [];
    found.push(...next);
    queue.push(...next);
  }
  return found;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/**
 * Kills every process this one started, however deep. They are stopped
 * first and the tree walked again until it holds still: a make that starts
 * a compiler between the walk and the kill would otherwise leave it orphaned.
 */
export function killDescendants(): void {
  const stopped = new Set<number>();
  for (let fresh = descendantsOf(process.pid); fresh.length > 0; fresh = descendantsOf(process.pid).filter((pid) => !stopped.has(pid))) {
    for (const pid of fresh) {
      stopped.add(pid);
      signal(pid, 'SIGSTOP');
    }
  }
  for (const pid of stopped) signal(pid, 'SIGKILL');
}

/**
 * Installs the handlers: on SIGINT, SIGTERM, SIGHUP or the parent's end, say
 * why in one line, kill what we started and exit 128 + the signal's number.
 * process.exit runs the exit hooks (tools/qemu/session.ts kills QEMU's group
 * and removes the temp directory; tools/qemu/guest-run.ts the relay socket).
 */
export function exitOnInterrupt(say: (line: string) => void): void {
  let exiting = false;
  const stop = (signalName: NodeJS.Signals, why: string): void => {
    if (exiting) return;
    exiting = true;
    // With the parent gone, stderr may be a pipe nobody reads: a failed write must not stop the clean-up.
    process.stderr.on('error', () => undefined);
    say(why);
    killDescendants();
    process.exit(signalExitCode(signalName));
  };
  for (const name of SIGNALS) process.on(name, () => stop(name, `interrupted by ${name}`));
  const parent = parentOf();
  if (parent === undefined) return; // no /proc: signals only
  const make = commandOf(parent) === 'make' ? caughtSignals(parent) : undefined;
  setInterval(() => {
    if (parentOf() !== parent) stop('SIGHUP', `the parent process (${parent}) ended: stopping`);
    if (make === undefined) return;
    const caught = caughtSignals(parent);
    const received = caught === undefined ? undefined : [...make].find((name) => !caught.has(name));
    if (received !== undefined) stop(received, `interrupted by ${received} (sent to make)`);
  }, PARENT_POLL_MS).unref();
}
