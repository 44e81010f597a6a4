/**
 * QEMU's process, owned until it is gone: it runs in a process group of its
 * own, killed whole on every end (clean stop, crash, deadline, the host
 * process exiting); its console goes to the run's console log and is watched
 * for fatal lines; and it keeps the facts its end is classified from
 * (outcome.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { type Finding, FATAL_KINDS, consoleLines, findings } from './console.js';
import { type Deadline, type SessionEnd, type SessionFacts, classifyEnd } from './outcome.js';

/** After a fatal console line, panic=-1 should end QEMU at once; don't wait forever if it doesn't. */
const CRASH_GRACE_MS = 5000;
const STOP_GRACE_MS = 10000;

/**
 * Every QEMU alive in this process, killed when the process exits. Vitest's module runners
 * evaluate this module once per project that imports it: the set and its one exit hook are
 * the process's, kept on globalThis, not one per evaluation.
 */
const LIVE = Symbol.for('mmapkit.live-qemu');
const live: Set<QemuProcess> = ((globalThis as { [LIVE]?: Set<QemuProcess> })[LIVE] ??= ((): Set<QemuProcess> => {
  const all = new Set<QemuProcess>();
  process.on('exit', () => {
    for (const qemu of all) qemu.killNow();
  });
  return all;
})());

export interface QemuProcessOptions {
  /** The file the console is appended to. */
  consoleLog: string;
  /** Shell mode: QEMU's serial console is the user's terminal (stdin and stdout inherited). */
  interactive: boolean;
  /** Echo the console to stderr as it arrives. */
  showConsole: boolean;
  /** Deadline for the whole session, s. */
  /** The whole run's deadline; none when undefined. */
  runTimeoutS?: number | undefined;
  /** Deadline for the agent's ready message, s; none in shell mode. */
  bootTimeoutS?: number;
  /** Called once QEMU has exited, before `ended` resolves. */
  onEnd: (end: SessionEnd) => void;
  /** Called once, when QEMU is killed or has exited: what the session holds besides QEMU goes. */
  release: () => void;
  /** A file descriptor QEMU gets as its fd 3 (a saved state for `-incoming fd:3`, snapshot.ts). */
  fd3?: number;
  /** Called with each complete new console line (agent mode: the snapshot point, snapshot.ts). */
  onLine?: (line: string) => void;
}

export class QemuProcess {
  readonly ended: Promise<SessionEnd>;
  /** Date.now() when QEMU was started. */
  readonly startedAt: number;
  private readonly child: ChildProcess;
  private readonly consoleFd: number;
  private consoleText = '';
  private stderrText = '';
  private readonly facts: Omit<SessionFacts, 'consoleLines' | 'consoleFindings'> = {
    agentReady: false,
    stopRequested: false,
  };
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly armed = new Map<Deadline, NodeJS.Timeout>();
  private exited = false;
  private released = false;

  constructor(
    command: string[],
    private readonly options: QemuProcessOptions,
  ) {
    const [binary, ...args] = command;
    this.consoleFd = openSync(options.consoleLog, 'a');
    this.startedAt = Date.now();
    this.child = spawn(binary!, args, {
      // Its own process group, so that killing the group takes every thread and helper with it.
      detached: true,
      // stdin is the serial console's input: the host's go line at the snapshot point (snapshot.ts).
      stdio: [
        ...(options.interactive ? (['inherit', 'inherit', 'pipe'] as const) : (['pipe', 'pipe', 'pipe'] as const)),
        ...(options.fd3 !== undefined ? [options.fd3] : []),
      ],
    });
    this.child.stdin?.on('error', () => undefined);
    live.add(this);
    this.child.stdout?.on('data', (chunk: Buffer) => this.onConsole(chunk));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderrText += chunk.toString()));
    this.ended = new Promise((resolve) => {
      this.child.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') this.stderrText += `${binary!} not found: run \`make setup\``;
        this.onExit(null, null, resolve);
      });
      // 'close', not 'exit': console output may still be in the pipe when QEMU exits.
      this.child.on('close', (code, signal) => this.onExit(code, signal, resolve));
    });
    if (options.runTimeoutS !== undefined) this.arm('run', options.runTimeoutS);
    if (options.bootTimeoutS !== undefined) this.arm('boot', options.bootTimeoutS);
  }

  /** The agent said ready: the boot deadline is met. */
  agentReady(): void {
    this.facts.agentReady = true;
    this.disarm('boot');
  }

  /** A deadline passed: the guest is presumed hung. */
  abort(deadline: Deadline, seconds: number): void {
    if (this.exited) return;
    this.facts.deadline ??= deadline;
    this.facts.deadlineSeconds ??= seconds;
    this.killNow();
  }

  /** Kills QEMU's process group at once; safe to call at any time, from an exit handler too. */
  killNow(): void {
    if (!this.exited) this.killGroup();
    this.release();
  }

  /** SIGKILL to QEMU's whole process group: QEMU and any helper it started. */
  private killGroup(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /**
   * A stop the host asked for (the normal end): `powerOff` asks the guest to
   * power off, else QEMU is killed; QEMU gets STOP_GRACE_MS to finish.
   */
  stop(powerOff: (() => void) | undefined): Promise<SessionEnd> {
    if (!this.exited) {
      this.facts.stopRequested = true;
      if (powerOff !== undefined) powerOff();
      else this.killNow();
      this.timers.push(setTimeout(() => this.killNow(), STOP_GRACE_MS));
    }
    return this.ended;
  }

  /** Types `text` on the guest's serial console (agent mode). */
  typeOnConsole(text: string): void {
    this.child.stdin?.write(text);
  }

  /** Console lines so far. */
  lines(): string[] {
    return consoleLines(this.consoleText);
  }

  /** Kernel warnings and other findings seen on the console so far. */
  findings(): Finding[] {
    return findings(this.lines());
  }

  private onConsole(chunk: Buffer): void {
    writeSync(this.consoleFd, chunk);
    if (this.options.showConsole) process.stderr.write(chunk);
    const before = this.consoleText.length;
    this.consoleText += chunk.toString();
    // Only complete new lines can carry a new finding.
    const fresh = this.consoleText.slice(this.consoleText.lastIndexOf('\n', before - 1) + 1);
    if (this.options.onLine !== undefined) {
      const complete = consoleLines(fresh.slice(0, fresh.lastIndexOf('\n') + 1));
      for (const line of complete.slice(0, -1)) this.options.onLine(line);
    }
    if (findings(consoleLines(fresh)).some((finding) => FATAL_KINDS.has(finding.kind))) {
      this.timers.push(setTimeout(() => this.killNow(), CRASH_GRACE_MS));
    }
  }

  private arm(deadline: Deadline, seconds: number): void {
    this.armed.set(deadline, setTimeout(() => this.abort(deadline, seconds), seconds * 1000));
  }

  private disarm(deadline: Deadline): void {
    clearTimeout(this.armed.get(deadline));
    this.armed.delete(deadline);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    live.delete(this);
    this.options.release();
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, resolve: (end: SessionEnd) => void): void {
    if (this.exited) return;
    this.exited = true;
    this.facts.qemuExit = { code, signal };
    this.facts.qemuStderr = this.stderrText;
    for (const timer of [...this.timers, ...this.armed.values()]) clearTimeout(timer);
    const lines = this.lines();
    const end = classifyEnd({ ...this.facts, consoleLines: lines, consoleFindings: findings(lines) });
    this.options.onEnd(end);
    // The group may still hold helpers QEMU started; the leader's exit does not end them.
    this.killGroup();
    this.release();
    closeSync(this.consoleFd);
    resolve(end);
  }
}
