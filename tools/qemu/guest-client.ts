/**
 * The host's side of the guest protocol: requests with ids and deadlines,
 * answers matched back, exec output streamed to a callback. It talks over any
 * stream, the virtio-serial channel itself or the relay socket that test
 * workers use (tools/qemu/relay.ts).
 */
import type { Duplex } from 'node:stream';
import type { NativeFunctions } from '../../native/index.js';
import type { SetupObject } from '../../guest/setup-api.js';
import { ProtocolError, checkGuestMessage, checkResult, idOf } from '../../guest/protocol-check.js';
import {
  type ArgsOf,
  type BatchOutcome,
  type ErrorInfo,
  type ExecResult,
  type FileStat,
  type FillRegionArgs,
  type GuestMessage,
  type GuestPattern,
  type Holder,
  type KmsgCursor,
  type KmsgRead,
  type Op,
  type OutputEvent,
  type PatternMismatch,
  type ReadyMessage,
  type RegionSample,
  type ResultOf,
  type SampleRegionArgs,
  type TargetOpenArgs,
  LineDecoder,
  decodeMessage,
  encodeMessage,
} from '../../guest/protocol.js';

/** An error the guest reported, with the errno fields of Node's fs errors. */
export class GuestError extends Error {
  readonly code?: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly address?: bigint;

  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = 'GuestError';
    Object.assign(this, info);
  }
}

/** The guest is gone (crashed, stopped or timed out) and cannot answer. */
export class GuestGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestGoneError';
  }
}

/** Every addon function, called in the guest, answered asynchronously. */
export type RemoteNative = {
  [K in keyof NativeFunctions]: (...args: Parameters<NativeFunctions[K]>) => Promise<ReturnType<NativeFunctions[K]>>;
};

/** One addon call by name, its arguments typed as the addon's (for nativeBatch). */
export type NativeCall = {
  [K in keyof RemoteNative]: { fn: K; args: Parameters<RemoteNative[K]> };
}[keyof RemoteNative];

interface Pending {
  /** Checks the answer's value against what the request's op answers, then resolves with it. */
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  onOutput?: (event: OutputEvent) => void;
  timer?: NodeJS.Timeout;
}

export interface ClientOptions {
  /** Deadline for one request, ms; 0 for none. */
  requestTimeoutMs: number;
  /** Called when a request misses its deadline: the guest is presumed hung. */
  onRequestTimeout?: (seconds: number) => void;
  /**
   * Called with a message from the guest that is not one (not JSON, or a field
   * of the wrong kind) and names no pending request; default: a process warning.
   * One that names a pending request fails that request instead.
   */
  onProtocolError?: (error: ProtocolError) => void;
}

const warn = (error: ProtocolError): void => process.emitWarning(error.message, 'ProtocolError');

export class GuestClient {
  readonly ready: Promise<ReadyMessage>;
  readonly native: RemoteNative;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private gone?: GuestGoneError;
  private announceReady!: (message: ReadyMessage) => void;
  private requestTimeoutMs: number;

  constructor(
    private readonly stream: Duplex,
    private readonly options: ClientOptions,
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs;
    let refuse!: (error: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      this.announceReady = resolve;
      refuse = reject;
    });
    // A channel that closes before the agent said ready (a relay with no guest left) must not leave callers waiting.
    this.ready.catch(() => undefined);
    const decoder = new LineDecoder();
    stream.on('data', (chunk: Buffer) => {
      for (const line of decoder.push(chunk)) this.receive(line);
    });
    stream.on('close', () => {
      const gone = new GuestGoneError('the guest channel closed');
      refuse(gone);
      this.fail(gone);
    });
    stream.on('error', () => undefined); // 'close' follows and reports it
    this.native = new Proxy({} as RemoteNative, {
      get: (_target, fn) =>
        typeof fn === 'string' ? (...args: unknown[]) => this.request('native', { fn, args }) : undefined,
    });
  }

  /** The deadline for requests sent from now on (the session derives it once the guest booted: deadlines.ts). */
  setRequestTimeoutMs(ms: number): void {
    this.requestTimeoutMs = ms;
  }

  /** One line from the guest: checked, then routed to whoever waits for it. */
  private receive(line: string): void {
    let raw: unknown;
    let message: GuestMessage;
    try {
      raw = decodeMessage(line);
      message = checkGuestMessage(raw);
    } catch (error) {
      const problem = error instanceof ProtocolError ? error : new ProtocolError(`the guest sent a line that cannot be decoded: ${(error as Error).message}`);
      const pending = this.pending.get(idOf(raw) ?? -1);
      if (pending !== undefined) pending.reject(problem);
      else (this.options.onProtocolError ?? warn)(problem);
      return;
    }
    this.dispatch(message);
  }

  private dispatch(message: GuestMessage): void {
    if ('type' in message) {
      this.announceReady(message);
    } else if ('stream' in message) {
      this.pending.get(message.id)?.onOutput?.(message);
    } else {
      const pending = this.pending.get(message.id);
      if (pending === undefined) return;
      if (message.ok) pending.resolve(message.value);
      else pending.reject(new GuestError(message.error));
    }
  }

  /** Sends a request; resolves with its answer, checked against the op's result type (guest/protocol.ts Ops). */
  request<O extends Op>(
    op: O,
    args: ArgsOf<O>,
    options: { onOutput?: (event: OutputEvent) => void; timeoutMs?: number } = {},
  ): Promise<ResultOf<O>> {
    if (this.gone !== undefined) return Promise.reject(this.gone);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      const settle = (): void => {
        this.pending.delete(id);
        clearTimeout(pending.timer);
      };
      const pending: Pending = {
        resolve: (value) => {
          settle();
          try {
            resolve(checkResult(op, value));
          } catch (error) {
            reject(error as ProtocolError);
          }
        },
        reject: (error) => {
          settle();
          reject(error);
        },
        onOutput: options.onOutput,
      };
      if (timeoutMs > 0) {
        pending.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new GuestGoneError(`the guest did not answer ${op} within ${timeoutMs / 1000} s`));
          this.options.onRequestTimeout?.(timeoutMs / 1000);
        }, timeoutMs);
      }
      this.pending.set(id, pending);
      this.stream.write(encodeMessage({ id, op, args }));
    });
  }

  /** Runs a command in the guest; output is streamed to onOutput as it comes. */
  exec(
    argv: string[],
    options: { onOutput?: (event: OutputEvent) => void; timeoutMs?: number; env?: Record<string, string>; fds?: number[] } = {},
  ): Promise<ExecResult> {
    const { env, fds } = options;
    return this.request('exec', { argv, ...(env !== undefined && { env }), ...(fds !== undefined && { fds }) }, options);
  }

  /** Runs a command and returns its output; rejects when it does not exit 0. */
  async run(argv: string[], options: { timeoutMs?: number; env?: Record<string, string>; fds?: number[] } = {}): Promise<string> {
    const chunks: Uint8Array[] = [];
    const result = await this.exec(argv, { ...options, onOutput: (event) => chunks.push(event.data) });
    const output = Buffer.concat(chunks).toString();
    if (result.code !== 0) {
      const status = result.signal ?? `status ${String(result.code)}`;
      throw new GuestError({ message: `${argv.join(' ')} failed (${status}): ${output.trim()}` });
    }
    return output;
  }

  /**
   * Through the relay only: attaches this connection to the guest that replaced
   * a crashed one (tools/qemu/relay.ts); its old fds and mappings are gone.
   */
  reattach(): Promise<ReadyMessage> {
    return this.request('reattach', {});
  }

  /**
   * Runs native calls one after another in the guest in one request (guest/protocol.ts BatchArgs):
   * the same calls in the same order as one request each, without a round trip per call.
   */
  nativeBatch(calls: NativeCall[], until?: 'ok' | 'error'): Promise<BatchOutcome[]> {
    return this.request('batch', { calls, ...(until !== undefined && { until }) });
  }

  /**
   * The guest kernel's log since `since`, read by the agent from /dev/kmsg
   * without spawning anything; without `since`, no lines and a cursor at the
   * log's current end. A cursor from an earlier boot reads the current boot
   * from its first record (guest/agent.ts, KmsgReader).
   */
  kernelLog(since?: KmsgCursor): Promise<KmsgRead> {
    return this.request('kmsg', since === undefined ? {} : { since });
  }

  /** Writes `pattern`, built in the guest, at `addr` with the addon's writeBytes: no bulk bytes on the channel. */
  async writePattern(addr: bigint, pattern: GuestPattern): Promise<void> {
    await this.request('writePattern', { addr, pattern });
  }

  /** Writes `pattern` over a region through a mapping the agent makes and undoes (guest/protocol.ts FillRegionArgs): one round trip. */
  async fillRegion(args: FillRegionArgs): Promise<void> {
    await this.request('fillRegion', args);
  }

  /**
   * Runs `read`, a native call that returns bytes, in the guest and compares them there with
   * `expect`, the patterns laid end to end: null when equal, else where they first differ.
   */
  checkPattern(read: NativeCall, expect: GuestPattern[]): Promise<PatternMismatch | null> {
    return this.request('checkPattern', { read, expect });
  }

  /** Every fd and mapping, of any guest process, of the files at `paths` (native/src/holders.cc). */
  holders(paths: string[]): Promise<Holder[]> {
    return this.request('holders', { paths });
  }

  /** A guest file's content as text, read by the agent itself (no `cat` to spawn); /proc/self is the agent. */
  readFile(path: string): Promise<string> {
    return this.request('readFile', { path });
  }

  /** A device region read several times in a child, some time apart, compared in the guest (guest/protocol.ts SampleRegionArgs). */
  sampleRegion(args: SampleRegionArgs): Promise<RegionSample> {
    return this.request('sampleRegion', args);
  }

  /** Writes `data` to a guest file from the agent (no shell to spawn): open O_WRONLY|O_CREAT|O_TRUNC, one write, as `>` does. */
  async writeFile(path: string, data: string): Promise<void> {
    await this.request('writeFile', { path, data });
  }

  /** stat(2) of a guest path, links followed, by the agent itself (no `stat -L` to spawn). */
  stat(path: string): Promise<FileStat> {
    return this.request('stat', { path });
  }

  /** Whether a guest path exists (`test -e`, without a shell): false for ENOENT, any other error thrown. */
  exists(path: string): Promise<boolean> {
    return this.stat(path).then(
      () => true,
      (error: unknown) => {
        if (error instanceof GuestError && error.code === 'ENOENT') return false;
        throw error;
      },
    );
  }

  /** Up to `length` bytes at `offset` of a fresh O_RDONLY open of `path`, one pread(2) (what `dd skip=` reads, without dd). */
  readAt(path: string, offset: bigint, length: number): Promise<Uint8Array> {
    return this.request('readAt', { path, offset, length });
  }

  /** `data` written at `offset` of a fresh O_WRONLY open of `path`, one pwrite(2): the count written (what `dd seek=` writes). */
  writeAt(path: string, offset: bigint, data: Uint8Array): Promise<number> {
    return this.request('writeAt', { path, offset, data });
  }

  /** Runs a profile's setup in the agent (guest/setup-api.ts): the object it made, whose fds are the agent's. */
  targetOpen(args: TargetOpenArgs): Promise<SetupObject> {
    return this.request('targetOpen', args);
  }

  /** Rejects every pending and future request. */
  fail(error: GuestGoneError): void {
    this.gone ??= error;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(this.gone);
      this.pending.delete(id);
    }
  }

  close(): void {
    this.stream.end();
    this.stream.destroy();
  }
}
