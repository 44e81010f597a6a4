/**
 * The guest protocol: the one place that knows how the host and the guest
 * agent talk over the virtio-serial channel.
 *
 * Framing is one JSON object per line (NDJSON). JSON has no BigInt and no
 * bytes, so those travel as tagged objects: {"$big":"123"} and
 * {"$bytes":"<base64>"}. Addresses and mmap offsets are BigInt end to end so
 * that values >= 2^32 and >= 2^63 reach the kernel unchanged.
 */

export const CHANNEL_NAME = 'mmapkit.agent';

/** Sent once by the agent when it is ready to serve requests. */
export interface ReadyMessage {
  type: 'ready';
  /** Guest uptime (s) when the agent became ready. */
  uptime: number;
  kernel: string;
  clocksource: string;
}

export interface ExecArgs {
  argv: string[];
  /** Extra environment for the command. */
  env?: Record<string, string>;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
}

/** A request for one native addon function, by name. */
export interface NativeArgs {
  fn: string;
  args: unknown[];
}

export type RequestBody =
  | { op: 'exec'; args: ExecArgs }
  | { op: 'native'; args: NativeArgs }
  | { op: 'ping'; args: Record<string, never> };

export type Request = RequestBody & { id: number };

export interface ErrorInfo {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  address?: bigint;
}

export type Response =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: ErrorInfo };

/** Output of an exec request, streamed while the command runs. */
export interface OutputEvent {
  id: number;
  stream: 'stdout' | 'stderr';
  data: Uint8Array;
}

export type GuestMessage = ReadyMessage | Response | OutputEvent;

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return { $big: value.toString() };
  if (value instanceof Uint8Array) {
    return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  }
  // Buffer#toJSON runs before the replacer sees the value, giving {type:'Buffer',data:[...]}.
  if (isSerializedBuffer(value)) return { $bytes: Buffer.from(value.data).toString('base64') };
  return value;
}

function isSerializedBuffer(value: unknown): value is { type: 'Buffer'; data: number[] } {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((value as { data?: unknown }).data)
  );
}

function reviver(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const tagged = value as { $big?: unknown; $bytes?: unknown };
  if (typeof tagged.$big === 'string' && Object.keys(value).length === 1) return BigInt(tagged.$big);
  if (typeof tagged.$bytes === 'string' && Object.keys(value).length === 1) {
    return Buffer.from(tagged.$bytes, 'base64');
  }
  return value;
}

/** One message as one line, newline included. */
export function encodeMessage(message: unknown): string {
  return JSON.stringify(message, replacer) + '\n';
}

export function decodeMessage(line: string): unknown {
  return JSON.parse(line, reviver);
}

/**
 * Splits a byte stream into lines. Chunks from a serial port or a socket end
 * anywhere, so a partial line is kept until its newline arrives.
 */
export class LineDecoder {
  private pending = '';
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array): string[] {
    this.pending += this.decoder.decode(chunk, { stream: true });
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    return lines.filter((line) => line.length > 0);
  }

  /** Bytes received after the last newline. */
  get remainder(): string {
    return this.pending;
  }
}

export function isReady(message: unknown): message is ReadyMessage {
  return typeof message === 'object' && message !== null && (message as ReadyMessage).type === 'ready';
}

export function isOutputEvent(message: unknown): message is OutputEvent {
  return typeof message === 'object' && message !== null && 'stream' in message && 'id' in message;
}

export function isResponse(message: unknown): message is Response {
  return typeof message === 'object' && message !== null && 'ok' in message && 'id' in message;
}
