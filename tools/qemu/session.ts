/**
 * One guest, from boot until it is gone: the run directory (run-dir.ts), what
 * the guest sees of the host (guest-view.ts), the user QEMU runs as
 * (qemu-user.ts), the devices (ivshmem.ts), the accelerator (accel.ts),
 * QEMU's process (qemu-process.ts) and, in agent mode, the channel to the
 * guest agent. The temp directory that holds the channel's socket is removed
 * when QEMU goes (unless `keep`).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, closeSync, createWriteStream, existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SetupError, UserError } from '../exit-codes.js';
import type { GuestKernel } from '../kernel.js';
import { ADDON_PATH, AGENT_BUNDLE, INIT_SCRIPT, REPO_ROOT, SCENARIO_BUNDLE, kernelBuildDir } from '../paths.js';
import type { ReadyMessage } from '../../guest/protocol.js';
import { type AccelChoice, bootOnAccelerator, icountSettings } from './accel.js';
import type { Finding } from './console.js';
import { GuestClient, GuestGoneError } from './guest-client.js';
import { GUEST_INPUTS_DIR, checkReadableByOthers, guestShares, stageInputs } from './guest-view.js';
import { cachedInitramfs, readInitramfsInputs } from './initramfs.js';
import { sessionDevices } from './ivshmem.js';
import { type SessionEnd, SessionEndedError } from './outcome.js';
import { type Accelerator, QEMU_BINARY, type QemuConfig, type QemuDeviceName, qemuArgs, shellQuote } from './qemu-args.js';
import { lastBootSeconds, recordBootSeconds } from './boot-record.js';
import { DEADLINE_FLOORS, bootDeadlineS, requestDeadlineS } from './deadlines.js';
import { QemuProcess } from './qemu-process.js';
import { qemuIdentity } from './qemu-user.js';
import { newRunDir } from './run-dir.js';
import { cachedVmlinux } from './vmlinux.js';
import { Qmp } from './qmp.js';
import { SNAPSHOT_POINT, openSnapshot, pruneSnapshots, resolveBinary, snapshotFile, snapshotKey, snapshotsEnabled } from './snapshot.js';
import { stagedPath } from './atomic-file.js';

export interface BootOptions {
  kernel: GuestKernel;
  accel: AccelChoice;
  mode: 'agent' | 'shell';
  cpus?: number;
  memoryMiB?: number;
  /** The agent must be up within this; default: deadlines.ts bootDeadlineS, scaled by the last boot here. */
  bootTimeoutS?: number;
  /** Deadline for one request; default: requestFloorS scaled by this guest's boot (deadlines.ts). */
  requestTimeoutS?: number;
  /** The request deadline's floor when none is given (default DEADLINE_FLOORS.requestS). */
  requestFloorS?: number;
  /** Deadline for the whole session, boot included. */
  runTimeoutS?: number;
  /** Keep the temp directory (socket, QEMU command line) for inspection. */
  keep?: boolean;
  /** Echo the console to stderr as it arrives. */
  showConsole?: boolean;
  /** Shell mode: a module for init to insmod before the shell starts. */
  insmod?: string;
  /**
   * Host files the run needs besides the checkout and /usr (a profile's
   * module under /root, say): the guest sees read-only copies at the same
   * paths (guest-view.ts stageInputs).
   */
  hostFiles?: string[];
  /** Progress lines for the user. */
  log?: (line: string) => void;
  /** TCG instruction counting with this shift (QemuConfig.icount); refused with KVM. */
  icount?: number;
  /** Extra devices for the profiles under test (profile key `qemuDevices`); none by default. */
  qemuDevices?: QemuDeviceName[];
  /** fbcon may take those devices' framebuffers over (profile key `console`, QemuConfig.framebufferConsole). */
  framebufferConsole?: boolean;
  /** Words added to the kernel command line (QemuConfig.kernelArgs); none by default. */
  kernelArgs?: string[];
  /**
   * Agent mode: restore a saved guest instead of booting, and save one when
   * there is none (snapshot.ts); the default unless MMAPKIT_SNAPSHOT=0 or this
   * is false. Not with extra devices or icount.
   */
  snapshot?: boolean;
}

/**
 * 512 MiB is room for the host's Node, the agent and a 64 MiB device twice over; more
 * costs boot time, since page_poison=1 (qemu-args.ts LEAK_REVEALING) fills every free
 * page at boot: 1 GiB booted about 0.3 s slower under TCG.
 */
// No whole-run deadline unless one is asked for (--timeout): the work a run
// does has no size known in advance (a user's command, a suite that grows
// with its profiles, a slower machine), and a fixed one turned a slow machine
// into a failure. Hangs are caught by the boot and per-request deadlines and
// by the console watch; a run can always be interrupted. Those scale with
// this machine's measured boot (deadlines.ts).
const DEFAULTS: { cpus: number; memoryMiB: number; requestFloorS: number } = { cpus: 2, memoryMiB: 512, requestFloorS: DEADLINE_FLOORS.requestS };

/** The addon's racing workers number at most 8 (native/src/race_group.h kMaxWorkers). */
const MAX_GUEST_CPUS = 8;

/**
 * The guest's vCPUs: 2 (the concurrency cases race on two), or MMAPKIT_GUEST_CPUS. Several guests
 * at once on a 2-core host run faster with one each, and their races could not overlap anyway
 * (docs/benchmarks.md, "Two guests of one vCPU, or of two"): make test's lanes use 1.
 */
export function guestCpus(env: NodeJS.ProcessEnv = process.env): number {
  const asked = env.MMAPKIT_GUEST_CPUS;
  if (asked === undefined || asked === '') return DEFAULTS.cpus;
  const cpus = Number(asked);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_GUEST_CPUS) throw new UserError(`MMAPKIT_GUEST_CPUS=${asked}: takes a whole number from 1 to ${MAX_GUEST_CPUS}`);
  return cpus;
}

type Settings = BootOptions & typeof DEFAULTS & { bootTimeoutS: number };

export class VmSession {
  readonly runDir: string;
  readonly consoleLog: string;
  readonly outputDir: string;
  readonly ended: Promise<SessionEnd>;
  client?: GuestClient;
  ready?: ReadyMessage;
  /** Wall time from QEMU's start to the agent's ready message. */
  bootMs?: number;
  /** The deadline for one request, once the agent is ready: derived from bootMs unless one was given. */
  requestTimeoutS?: number;
  /** The QEMU command line, also saved as qemu-command.sh in the run directory. */
  readonly command: string[];
  /** With the ivshmem device: the host file behind its shared memory (ivshmem.ts). */
  readonly ivshmemFile?: string;
  /** The saved state this guest was restored from (snapshot.ts); undefined for a boot. */
  readonly restoredFrom?: string;
  /** Where a cold boot saves its state at the snapshot point, if it should. */
  private readonly saveTo?: string;
  /** The go line's words after the clock and seed (snapshot.ts); undefined without the hold point. */
  private readonly goWords?: string[];
  private readonly qmpSocket: string = '';
  /** The go line was typed: a restored guest runs. */
  private reachedGo = false;

  private readonly tempDir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-'));
  /** The run's copies of files from outside the shared trees (guest-view.ts), if any. */
  private readonly inputsDir?: string;
  private readonly qemu: QemuProcess;
  private readonly server?: Server;
  private readonly agentUp: Promise<ReadyMessage>;
  private announceAgentUp!: (ready: ReadyMessage) => void;

  private constructor(
    readonly accel: Accelerator,
    private readonly options: Settings,
  ) {
    const { kernel } = options;
    const identity = qemuIdentity();
    const hostFiles = options.hostFiles ?? [];
    if (identity !== undefined) checkReadableByOthers([AGENT_BUNDLE, ADDON_PATH, SCENARIO_BUNDLE, ...hostFiles], identity.name);
    const run = newRunDir(identity);
    this.runDir = run.dir;
    this.consoleLog = run.consoleLog;
    this.outputDir = run.outputDir;
    const inputs = stageInputs(hostFiles, run.inputsDir, identity?.gid).length > 0 ? run.inputsDir : undefined;
    this.inputsDir = inputs;
    const cacheDir = kernelBuildDir(kernel.version);
    const { devices, ivshmemFile } = sessionDevices(options.qemuDevices ?? [], this.runDir);
    this.ivshmemFile = ivshmemFile;
    const initramfsInputs = readInitramfsInputs(kernel.version, INIT_SCRIPT);
    const held = options.mode === 'agent' && options.snapshot === true && devices.length === 0 && options.icount === undefined;
    const runParams = {
      out: this.outputDir,
      ...(inputs !== undefined && { inputs: GUEST_INPUTS_DIR }),
    };
    const config: QemuConfig = {
      accel,
      vmlinux: cachedVmlinux(kernel.image, cacheDir),
      initramfs: cachedInitramfs(initramfsInputs, cacheDir).path,
      memoryMiB: options.memoryMiB,
      cpus: options.cpus,
      ...(options.icount !== undefined && { icount: options.icount }),
      ...(devices.length > 0 && { devices }),
      ...(options.framebufferConsole === true && { framebufferConsole: true }),
      ...(options.kernelArgs !== undefined && options.kernelArgs.length > 0 && { kernelArgs: options.kernelArgs }),
      shares: guestShares({ outputDir: this.outputDir, ...(inputs !== undefined && { inputsDir: inputs }) }),
      ...(identity !== undefined && { runAs: identity.name }),
      channelSocket: options.mode === 'agent' ? path.join(this.tempDir, 'agent.sock') : undefined,
      interactive: options.mode === 'shell',
      // With the hold point the run's own parameters come on the go line, so
      // that the saved state serves every run.
      guestParams: held
        ? { mode: options.mode, root: REPO_ROOT, hold: '1' }
        : {
            mode: options.mode,
            root: REPO_ROOT,
            ...runParams,
            ...(options.insmod !== undefined && { insmod: options.insmod }),
            ...(process.env.TERM !== undefined && { term: process.env.TERM }),
          },
    };
    const command = [QEMU_BINARY, ...qemuArgs(config)];
    let fd3: number | undefined;
    if (held) {
      this.goWords = Object.entries(runParams).map(([key, value]) => `${key}=${value}`);
      this.qmpSocket = path.join(this.tempDir, 'qmp.sock');
      command.push('-qmp', `unix:${this.qmpSocket},server=on,wait=off`);
      const key = snapshotKey({
        command,
        runPaths: [this.runDir, this.tempDir],
        files: [config.vmlinux, config.initramfs, resolveBinary(QEMU_BINARY), ...initramfsInputs.agentRuntime.map((file) => file.real)],
        contents: initramfsInputs.agentCheckoutFiles.map((file) => path.join(REPO_ROOT, file)),
      });
      const saved = snapshotFile(cacheDir, key);
      fd3 = openSnapshot(saved);
      if (fd3 !== undefined) {
        command.push('-incoming', 'fd:3');
        this.restoredFrom = saved;
        appendFileSync(this.consoleLog, `mmapkit: guest restored from ${saved}, saved at guest/init.sh's snapshot point; the boot's kernel messages are in the guest's kernel log, not on this console\n`);
      } else {
        this.saveTo = saved;
      }
    }
    this.command = command;
    writeFileSync(path.join(this.runDir, 'qemu-command.sh'), `${shellQuote(this.command)}\n`);
    this.agentUp = new Promise((resolve) => (this.announceAgentUp = resolve));
    if (config.channelSocket !== undefined) {
      this.server = createServer((socket) => this.onAgentConnection(socket));
      this.server.listen(config.channelSocket);
    }
    this.qemu = new QemuProcess(this.command, {
      consoleLog: this.consoleLog,
      interactive: options.mode === 'shell',
      showConsole: options.showConsole === true,
      runTimeoutS: options.runTimeoutS,
      ...(options.mode === 'agent' && { bootTimeoutS: options.bootTimeoutS }),
      onEnd: (end) => this.client?.fail(new GuestGoneError(end.reason)),
      release: () => this.release(),
      ...(fd3 !== undefined && { fd3 }),
      ...(held && { onLine: (line: string) => {
        if (line.includes(SNAPSHOT_POINT) && this.restoredFrom === undefined) void this.atSnapshotPoint();
      } }),
    });
    if (fd3 !== undefined) closeSync(fd3);
    this.ended = this.qemu.ended;
    if (this.restoredFrom !== undefined) void this.goWhenRunning();
  }

  /** Boots a guest and resolves once its agent is ready (agent mode) or QEMU runs (shell mode). */
  static async boot(options: BootOptions): Promise<VmSession> {
    // An option left undefined keeps its default rather than overriding it.
    const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as BootOptions;
    const bootTimeoutS = bootDeadlineS(given.bootTimeoutS, lastBootSeconds(options.kernel.version));
    return bootOnAccelerator(icountSettings({ ...DEFAULTS, cpus: guestCpus(), snapshot: snapshotsEnabled(), ...given, bootTimeoutS }), (accel, settings) => VmSession.bootWith(accel, settings));
  }

  private static async bootWith(accel: Accelerator, settings: Settings): Promise<VmSession> {
    if (settings.mode === 'agent' && !existsSync(AGENT_BUNDLE)) {
      throw new SetupError('the guest agent is not built: run `make build`');
    }
    const session = new VmSession(accel, settings);
    if (settings.mode === 'shell') return session;
    const outcome = await Promise.race([session.agentUp, session.ended.then((end) => ({ end }))]);
    if ('end' in outcome) {
      const restored = session.restoredFrom;
      if (restored !== undefined && !session.reachedGo) {
        // The saved state could not be restored (QEMU refused it): remove it, say so once, boot cold.
        rmSync(restored, { force: true });
        settings.log?.(`could not restore the guest from ${restored} (${outcome.end.reason}): booting it instead`);
        return VmSession.bootWith(accel, { ...settings, snapshot: false });
      }
      throw new SessionEndedError(outcome.end, session);
    }
    return session;
  }

  /** The go line: the host's clock, fresh random bytes, the run's parameters (guest/init.sh). */
  private sayGo(): void {
    const words = [String(Math.floor(Date.now() / 1000)), randomBytes(16).toString('hex'), ...(this.goWords ?? [])];
    this.qemu.typeOnConsole(`go ${words.join(' ')}\n`);
    this.reachedGo = true;
  }

  /**
   * A restored guest waits at the snapshot point, reading the console: the
   * go line is typed once the guest runs (typed before, while QEMU loads the
   * state, it would be lost with the serial port's old state).
   */
  private async goWhenRunning(): Promise<void> {
    let qmp: Qmp | undefined;
    try {
      qmp = await Qmp.open(this.qmpSocket, this.options.bootTimeoutS * 1000);
      await qmp.runAfterIncoming(this.options.bootTimeoutS * 1000);
      this.sayGo();
    } catch {
      // QEMU ended (a state it could not load): its end says why, and bootWith boots cold.
    } finally {
      qmp?.close();
    }
  }

  /** A cold boot at the snapshot point: save the guest there if asked, then let it go on. */
  private async atSnapshotPoint(): Promise<void> {
    const target = this.saveTo;
    if (target !== undefined && !existsSync(target)) {
      try {
        await this.save(target);
        this.options.log?.(`saved the guest at its snapshot point in ${target}: later guests are restored from it`);
      } catch (error) {
        this.options.log?.(`could not save the guest's state (${(error as Error).message}): later guests boot cold`);
      }
    }
    this.sayGo();
  }

  /**
   * Stops the guest, migrates it to the host over a unix socket (QEMU's
   * seccomp sandbox forbids exec: migration), writes the stream to a staged
   * file renamed into place (atomic-file.ts), and continues the guest.
   */
  private async save(target: string): Promise<void> {
    const qmp = await Qmp.open(this.qmpSocket);
    const socketPath = path.join(this.tempDir, 'migrate.sock');
    const staged = stagedPath(target);
    const server = createServer();
    try {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
      // QEMU connects after -runas has dropped its privileges.
      const identity = qemuIdentity();
      if (identity !== undefined) {
        chmodSync(this.tempDir, 0o711);
        chownSync(socketPath, identity.uid, identity.gid);
      }
      const written = new Promise<void>((resolve, reject) => {
        server.once('connection', (socket) => {
          const file = createWriteStream(staged);
          socket.pipe(file);
          file.once('finish', resolve).once('error', reject);
          socket.once('error', reject);
        });
      });
      await qmp.execute('stop');
      try {
        await qmp.execute('migrate', { uri: `unix:${socketPath}` });
        await qmp.waitMigrated();
        await written;
        renameSync(staged, target);
        pruneSnapshots(path.dirname(target), target);
      } finally {
        await qmp.execute('cont');
      }
    } finally {
      qmp.close();
      server.close();
      rmSync(staged, { force: true });
    }
  }

  private onAgentConnection(socket: Socket): void {
    if (this.client !== undefined) {
      socket.destroy();
      return;
    }
    const { requestTimeoutS, requestFloorS } = this.options;
    const client = new GuestClient(socket, {
      // Until the agent is ready, no request is sent: the floor stands in for the derived deadline.
      requestTimeoutMs: requestDeadlineS(requestTimeoutS, requestFloorS, undefined) * 1000,
      onRequestTimeout: (seconds) => this.qemu.abort('request', seconds),
    });
    this.client = client;
    client.ready.then(
      (ready) => {
        this.ready = ready;
        this.bootMs = Date.now() - this.qemu.startedAt;
        // A restored guest's start says little of this machine's speed: its deadlines scale from the last cold boot.
        const measuredBootS = this.restoredFrom === undefined ? this.bootMs / 1000 : lastBootSeconds(this.options.kernel.version);
        this.requestTimeoutS = requestDeadlineS(requestTimeoutS, requestFloorS, measuredBootS);
        client.setRequestTimeoutMs(this.requestTimeoutS * 1000);
        // TCG boots only: they are what a slow machine stretches; a KVM boot would make the next TCG deadline the floor.
        // Cold boots only: a restored guest is not what a slow machine's deadlines should scale from.
        if (this.accel === 'tcg' && this.restoredFrom === undefined) recordBootSeconds(this.options.kernel.version, this.bootMs / 1000);
        this.qemu.agentReady();
        this.announceAgentUp(ready);
      },
      // The channel closed before the agent was ready: QEMU's end says why (boot failure, crash).
      () => undefined,
    );
  }

  /** Kills QEMU's process group at once; safe to call at any time. */
  killNow(): void {
    this.qemu.killNow();
  }

  private release(): void {
    this.server?.close();
    if (this.options.keep === true) {
      this.options.log?.(`kept the run's temp directory ${this.tempDir}`);
      return;
    }
    rmSync(this.tempDir, { recursive: true, force: true });
    // The copies served this guest only: a later guest sees the checkout, build/runs/ included.
    if (this.inputsDir !== undefined) rmSync(this.inputsDir, { recursive: true, force: true });
  }


  /** Console lines so far. */
  lines(): string[] {
    return this.qemu.lines();
  }

  /** Kernel warnings and other non-fatal findings seen on the console so far. */
  findings(): Finding[] {
    return this.qemu.findings();
  }

  /** Asks the guest to power off (closing the channel ends the agent) and waits for QEMU. */
  stop(): Promise<SessionEnd> {
    const client = this.client;
    return this.qemu.stop(client === undefined ? undefined : () => client.close());
  }

  /** The guest client, once the agent is ready. */
  get guest(): GuestClient {
    if (this.client === undefined || this.ready === undefined) throw new SetupError('the guest agent is not ready');
    return this.client;
  }
}
