/**
 * Launches the guest and owns it until it is gone: QEMU's process group, the
 * agent channel, the console log, the deadlines and the temp files. Whatever
 * happens (clean stop, crash, hang, host interrupted), QEMU's whole process
 * group is killed and the temp directory removed (unless `keep`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SetupError, UserError } from '../exit-codes.js';
import type { GuestKernel } from '../kernel.js';
import { AGENT_BUNDLE, INIT_SCRIPT, REPO_ROOT, RUNS_DIR, kernelBuildDir } from '../paths.js';
import type { ReadyMessage } from '../../guest/protocol.js';
import { type Finding, FATAL_KINDS, consoleLines, findings } from './console.js';
import { GuestClient, GuestGoneError } from './guest-client.js';
import { cachedInitramfs, readInitramfsInputs } from './initramfs.js';
import { type SessionEnd, type SessionFacts, classifyEnd } from './outcome.js';
import { type Accelerator, IVSHMEM_SIZE, QEMU_BINARY, type QemuConfig, type QemuDevice, type QemuDeviceName, qemuArgs, shellQuote } from './qemu-args.js';
import { cachedVmlinux } from './vmlinux.js';

export type AccelChoice = Accelerator | 'auto';

export interface BootOptions {
  kernel: GuestKernel;
  accel: AccelChoice;
  mode: 'agent' | 'shell';
  cpus?: number;
  memoryMiB?: number;
  bootTimeoutS?: number;
  requestTimeoutS?: number;
  /** Deadline for the whole session, boot included. */
  runTimeoutS?: number;
  /** Keep the temp directory (socket, QEMU command line) for inspection. */
  keep?: boolean;
  /** Echo the console to stderr as it arrives. */
  showConsole?: boolean;
  /** Shell mode: a module for init to insmod before the shell starts. */
  insmod?: string;
  /** Progress lines for the user. */
  log?: (line: string) => void;
  /** TCG instruction counting with this shift (QemuConfig.icount); refused with KVM. */
  icount?: number;
  /** Extra devices for the profiles under test (profile key `qemuDevices`); none by default. */
  qemuDevices?: QemuDeviceName[];
}

/**
 * 512 MiB is room for the host's Node, the agent and a 64 MiB device twice over; more
 * costs boot time, since page_poison=1 (qemu-args.ts LEAK_REVEALING) fills every free
 * page at boot: 1 GiB booted about 0.3 s slower under TCG.
 */
const DEFAULTS = { cpus: 2, memoryMiB: 512, bootTimeoutS: 60, requestTimeoutS: 60, runTimeoutS: 900 };
/** A KVM guest either reaches the agent in a few seconds or hangs (as it does on this project's machines). */
const KVM_PROBE_TIMEOUT_S = 8;
/** After a fatal console line, panic=-1 should end QEMU at once; don't wait forever if it doesn't. */
const CRASH_GRACE_MS = 5000;
const STOP_GRACE_MS = 10000;
const KEEP_RUNS = 20;

/** The session ended before it could be used; carries the end state and console tail. */
export class SessionEndedError extends Error {
  constructor(
    readonly end: SessionEnd,
    readonly session: VmSession,
  ) {
    super(end.reason);
    this.name = 'SessionEndedError';
  }
}

const live = new Set<VmSession>();
process.on('exit', () => {
  for (const session of live) session.killNow();
});

export function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function newRunDir(): string {
  mkdirSync(RUNS_DIR, { recursive: true });
  const old = readdirSync(RUNS_DIR).sort();
  for (const stale of old.slice(0, Math.max(0, old.length - KEEP_RUNS + 1))) {
    rmSync(path.join(RUNS_DIR, stale), { recursive: true, force: true });
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const dir = path.join(RUNS_DIR, `${stamp}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`);
  mkdirSync(path.join(dir, 'out'), { recursive: true });
  return dir;
}

export class VmSession {
  readonly runDir = newRunDir();
  readonly consoleLog = path.join(this.runDir, 'console.log');
  readonly outputDir = path.join(this.runDir, 'out');
  readonly ended: Promise<SessionEnd>;
  client?: GuestClient;
  ready?: ReadyMessage;
  /** Wall time from QEMU's start to the agent's ready message. */
  bootMs?: number;
  /** The QEMU command line, also saved as qemu-command.sh in the run directory. */
  readonly command: string[];
  /**
   * With the ivshmem device: the host file behind its shared memory, created
   * empty (all zero) in the run directory for this run and kept with the run,
   * so that the host can check afterwards what the guest wrote.
   */
  readonly ivshmemFile?: string;

  private readonly tempDir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-'));
  private readonly consoleFd = openSync(this.consoleLog, 'a');
  private readonly child: ChildProcess;
  private readonly server?: Server;
  private readonly startedAt: number;
  private readonly agentUp: Promise<ReadyMessage>;
  private announceAgentUp!: (ready: ReadyMessage) => void;
  private readonly timers: NodeJS.Timeout[] = [];
  private consoleText = '';
  private stderrText = '';
  private readonly facts: Omit<SessionFacts, 'consoleLines' | 'consoleFindings'> = {
    agentReady: false,
    stopRequested: false,
  };
  private exited = false;

  private constructor(
    readonly accel: Accelerator,
    private readonly options: BootOptions & typeof DEFAULTS,
  ) {
    const { kernel } = options;
    const cacheDir = kernelBuildDir(kernel.version);
    const names = [...new Set(options.qemuDevices ?? [])];
    if (names.includes('ivshmem')) {
      // A new sparse file of the BAR's size in the run directory: the guest sees zeroes, and
      // this file is the only host file the device makes guest-writable.
      this.ivshmemFile = path.join(this.runDir, 'ivshmem.mem');
      closeSync(openSync(this.ivshmemFile, 'wx', 0o600));
      truncateSync(this.ivshmemFile, IVSHMEM_SIZE);
    }
    const devices = names.map((name): QemuDevice => (name === 'ivshmem' ? { name, memFile: this.ivshmemFile! } : { name }));
    const config: QemuConfig = {
      accel,
      vmlinux: cachedVmlinux(kernel.image, cacheDir),
      initramfs: cachedInitramfs(readInitramfsInputs(kernel.version, INIT_SCRIPT), cacheDir).path,
      memoryMiB: options.memoryMiB,
      cpus: options.cpus,
      ...(options.icount !== undefined && { icount: options.icount }),
      ...(devices.length > 0 && { devices }),
      hostRoot: '/',
      outputDir: this.outputDir,
      channelSocket: options.mode === 'agent' ? path.join(this.tempDir, 'agent.sock') : undefined,
      interactive: options.mode === 'shell',
      guestParams: {
        mode: options.mode,
        root: REPO_ROOT,
        out: this.outputDir,
        ...(options.insmod !== undefined && { insmod: options.insmod }),
        ...(process.env.TERM !== undefined && { term: process.env.TERM }),
      },
    };
    this.command = [QEMU_BINARY, ...qemuArgs(config)];
    writeFileSync(path.join(this.runDir, 'qemu-command.sh'), `${shellQuote(this.command)}\n`);
    this.agentUp = new Promise((resolve) => (this.announceAgentUp = resolve));
    if (config.channelSocket !== undefined) {
      this.server = createServer((socket) => this.onAgentConnection(socket));
      this.server.listen(config.channelSocket);
    }
    this.startedAt = Date.now();
    this.child = spawn(QEMU_BINARY, this.command.slice(1), {
      // Its own process group, so that killing the group takes every thread and helper with it.
      detached: true,
      stdio: options.mode === 'shell' ? ['inherit', 'inherit', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    });
    live.add(this);
    this.child.stdout?.on('data', (chunk: Buffer) => this.onConsole(chunk));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderrText += chunk.toString()));
    this.ended = new Promise((resolve) => {
      this.child.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') this.stderrText += `${QEMU_BINARY} not found: run \`make setup\``;
        this.onExit(null, null, resolve);
      });
      // 'close', not 'exit': console output may still be in the pipe when QEMU exits.
      this.child.on('close', (code, signal) => this.onExit(code, signal, resolve));
    });
    this.arm('run', options.runTimeoutS);
    if (options.mode === 'agent') this.arm('boot', options.bootTimeoutS);
  }

  /** Boots a guest and resolves once its agent is ready (agent mode) or QEMU runs (shell mode). */
  static async boot(options: BootOptions): Promise<VmSession> {
    // An option left undefined keeps its default rather than overriding it.
    const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as BootOptions;
    const settings = { ...DEFAULTS, ...given };
    if (settings.icount !== undefined) {
      // QEMU refuses -icount with a hardware accelerator; 'auto' means TCG here.
      if (settings.accel === 'kvm') throw new UserError('instruction counting (icount) needs --accel tcg');
      settings.accel = 'tcg';
      // One vCPU: QEMU 7.2 with -icount and -smp 2 hangs before the guest's
      // first console line here, and one CPU is what makes counts repeat.
      settings.cpus = 1;
    }
    if (settings.accel === 'auto') {
      if (kvmUsable()) {
        try {
          const probe = await VmSession.bootWith('kvm', { ...settings, bootTimeoutS: KVM_PROBE_TIMEOUT_S });
          settings.log?.('accelerator: kvm (the probe boot reached the guest agent)');
          return probe;
        } catch (error) {
          if (!(error instanceof SessionEndedError)) throw error;
          settings.log?.(`accelerator: tcg (the KVM probe boot failed: ${error.end.reason})`);
        }
      } else {
        settings.log?.('accelerator: tcg (/dev/kvm is not usable)');
      }
      return VmSession.bootWith('tcg', settings);
    }
    return VmSession.bootWith(settings.accel, settings);
  }

  private static async bootWith(accel: Accelerator, settings: BootOptions & typeof DEFAULTS, retry = true): Promise<VmSession> {
    if (settings.mode === 'agent' && !existsSync(AGENT_BUNDLE)) {
      throw new SetupError('the guest agent is not built: run `make build`');
    }
    const session = new VmSession(accel, settings);
    if (settings.mode === 'shell') return session;
    const outcome = await Promise.race([session.agentUp, session.ended.then((end) => ({ end }))]);
    if (!('end' in outcome)) return session;
    // 6.12 under multi-threaded TCG now and then oopses on an int3 in early boot (a
    // text_poke_bp race between the emulated CPUs), before init or any module of ours ran:
    // nothing under test is involved, so one more boot is the honest answer. Once only,
    // so that a kernel that cannot boot still fails.
    const crashedEarly = session.findings().some((finding) => FATAL_KINDS.has(finding.kind));
    if (retry && accel === 'tcg' && outcome.end.state === 'boot-failed' && crashedEarly) {
      settings.log?.(`${outcome.end.reason} (console: ${session.consoleLog}); booting once more`);
      return VmSession.bootWith(accel, settings, false);
    }
    throw new SessionEndedError(outcome.end, session);
  }

  private onAgentConnection(socket: Socket): void {
    if (this.client !== undefined) {
      socket.destroy();
      return;
    }
    const client = new GuestClient(socket, {
      requestTimeoutMs: this.options.requestTimeoutS * 1000,
      onRequestTimeout: (seconds) => this.abort('request', seconds),
    });
    this.client = client;
    client.ready.then(
      (ready) => {
        this.ready = ready;
        this.bootMs = Date.now() - this.startedAt;
        this.facts.agentReady = true;
        this.disarm('boot');
        this.announceAgentUp(ready);
      },
      // The channel closed before the agent was ready: QEMU's end says why (boot failure, crash).
      () => undefined,
    );
  }

  private onConsole(chunk: Buffer): void {
    writeSync(this.consoleFd, chunk);
    if (this.options.showConsole === true) process.stderr.write(chunk);
    const before = this.consoleText.length;
    this.consoleText += chunk.toString();
    // Only complete new lines can carry a new finding.
    const fresh = this.consoleText.slice(this.consoleText.lastIndexOf('\n', before - 1) + 1);
    if (findings(consoleLines(fresh)).some((finding) => FATAL_KINDS.has(finding.kind))) {
      this.timers.push(setTimeout(() => this.killNow(), CRASH_GRACE_MS));
    }
  }

  private readonly armed = new Map<string, NodeJS.Timeout>();

  private arm(deadline: 'boot' | 'run', seconds: number): void {
    const timer = setTimeout(() => this.abort(deadline, seconds), seconds * 1000);
    this.armed.set(deadline, timer);
  }

  private disarm(deadline: 'boot' | 'run'): void {
    clearTimeout(this.armed.get(deadline));
    this.armed.delete(deadline);
  }

  /** A deadline fired: the guest is presumed hung. */
  private abort(deadline: 'boot' | 'request' | 'run', seconds: number): void {
    if (this.exited) return;
    this.facts.deadline ??= deadline;
    this.facts.deadlineSeconds ??= seconds;
    this.killNow();
  }

  /** Kills QEMU's process group at once; safe to call at any time, from an exit handler too. */
  killNow(): void {
    if (!this.exited && this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.cleanUp();
  }

  private cleanedUp = false;

  private cleanUp(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    live.delete(this);
    this.server?.close();
    if (this.options.keep === true) this.options.log?.(`kept the run's temp directory ${this.tempDir}`);
    else rmSync(this.tempDir, { recursive: true, force: true });
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, resolve: (end: SessionEnd) => void): void {
    if (this.exited) return;
    this.exited = true;
    this.facts.qemuExit = { code, signal };
    this.facts.qemuStderr = this.stderrText;
    for (const timer of [...this.timers, ...this.armed.values()]) clearTimeout(timer);
    const end = this.end();
    this.client?.fail(new GuestGoneError(end.reason));
    // The group may still hold helpers QEMU started; the leader's exit does not end them.
    this.killNow();
    closeSync(this.consoleFd);
    resolve(end);
  }

  private end(): SessionEnd {
    const lines = consoleLines(this.consoleText);
    return classifyEnd({ ...this.facts, consoleLines: lines, consoleFindings: findings(lines) });
  }

  /** Console lines so far. */
  lines(): string[] {
    return consoleLines(this.consoleText);
  }

  /** Kernel warnings and other non-fatal findings seen on the console so far. */
  findings(): Finding[] {
    return findings(this.lines());
  }

  /** Asks the guest to power off (closing the channel ends the agent) and waits for QEMU. */
  async stop(): Promise<SessionEnd> {
    if (!this.exited) {
      this.facts.stopRequested = true;
      this.client?.close();
      if (this.client === undefined) this.killNow();
      const timer = setTimeout(() => this.killNow(), STOP_GRACE_MS);
      this.timers.push(timer);
    }
    return this.ended;
  }

  /** The guest client, once the agent is ready. */
  get guest(): GuestClient {
    if (this.client === undefined || this.ready === undefined) throw new SetupError('the guest agent is not ready');
    return this.client;
  }
}
