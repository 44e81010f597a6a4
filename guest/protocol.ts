/**
 * The guest protocol: the one place that knows how the host and the guest
 * agent talk over the virtio-serial channel.
 *
 * Framing is one JSON object per line (NDJSON). JSON has no BigInt and no
 * bytes, so those travel as tagged objects: {"$big":"123"} and
 * {"$bytes":"<base64>"}. Addresses and mmap offsets are BigInt end to end so
 * that values >= 2^32 and >= 2^63 reach the kernel unchanged.
 */

import type { ConstantName, Holder } from '../native/index.js';
import type { SetupObject } from './setup-api.js';
import type { FuzzArgs, FuzzReport } from './fuzz-types.js';

export const CHANNEL_NAME = 'mmapkit.agent';

/**
 * Sent once by the agent when it is ready to serve requests, and by the relay
 * to each connection: with the facts every client needs first, so that none
 * has to ask for them.
 */
export interface ReadyMessage {
  type: 'ready';
  /** Guest uptime (s) when the agent became ready. */
  uptime: number;
  kernel: string;
  clocksource: string;
  /** The guest's page size, bytes (the addon's pageSize()). */
  pageSize: number;
  /** The addon's constants (PROT_*, MAP_*, O_*, ...) as the guest's headers define them. */
  constants: Readonly<Record<ConstantName, number>>;
  /** The agent's pid: the process that holds every fd and mapping a case makes through it. */
  pid: number;
}

export interface ExecArgs {
  argv: string[];
  /** Extra environment for the command. */
  env?: Record<string, string>;
  /**
   * Fds of the agent the command gets as its fds 3, 4, ...: the way a second program reaches an
   * object that another open() of its node does not (a profile setup's reach 'fork').
   */
  fds?: number[];
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

/**
 * Where a reader of the guest kernel's log stands: the boot it read from
 * (/proc/sys/kernel/random/boot_id) and the sequence number of the next
 * /dev/kmsg record it has not seen.
 */
export interface KmsgCursor {
  bootId: string;
  seq: number;
}

/** What a `kmsg` request answers. */
export interface KmsgRead {
  /** Pass it back to read on from here. */
  cursor: KmsgCursor;
  /** The records read, as dmesg prints them: "[   12.345678] text", one line per line of text. */
  lines: string[];
  /** Records overwritten in the kernel's ring buffer before they could be read. */
  lost: number;
  /** The cursor was from another boot: the guest was rebooted since, and this read started at the new boot's first record. */
  rebooted: boolean;
}

/** Generated in the guest instead of sent: buffers too regular to be worth 1.4 bytes of base64 per byte on the channel. */
export type GuestPattern =
  /** `length` zero bytes. */
  | { kind: 'zeroes'; length: number }
  /** `count` pages of `pageSize` bytes, every 8-byte word of page i holding `first + i` (little-endian). */
  | { kind: 'pageIndex'; pageSize: number; first: bigint; count: number };

/** Writes a pattern, built in the guest, with the addon's writeBytes at `addr`: the same guarded copy as a writeBytes of those bytes. */
export interface WritePatternArgs {
  addr: bigint;
  pattern: GuestPattern;
}

/**
 * Writes a pattern, built in the guest, over a device's region through a
 * MAP_SHARED mapping made for it and unmapped right after (guest/agent.ts
 * throughRegion): of `fd`, or of `path` opened O_RDWR and closed again. A
 * whole restore of the region in one request.
 */
export interface FillRegionArgs extends RegionAt {
  pattern: GuestPattern;
}

/** Where fillRegion and sampleRegion map a device's region: its node (or a setup object's fd) and the mmap offset. */
export interface RegionAt {
  path: string;
  /** A setup object's fd in the agent: mapped instead of opening `path`. */
  fd?: number;
  offset: bigint;
}

/**
 * Reads a device's region once, then again after each of `gapsMs`, each time
 * through a fresh MAP_SHARED mapping unmapped right after the read (guest/agent.ts
 * readRegion), so that nobody keeps it mapped in between; the agent compares
 * each read with the first and with the one before it and sends back only
 * what it found, not the bytes.
 */
export interface SampleRegionArgs extends RegionAt {
  length: number;
  gapsMs: number[];
}

/** What sampleRegion found. */
export interface RegionSample {
  /** Bytes of the first read that are not zero, and the offset of the first (-1: none). */
  nonZero: number;
  firstNonZero: number;
  /** The first two reads found to differ: how far apart they started, how many bytes differ, the first at which offset. */
  changed?: RegionChange;
}

export interface RegionChange {
  apartMs: number;
  bytes: number;
  firstAt: number;
}

/**
 * A run of zero bytes to compare regions with, a chunk at a time: Buffer's compare is one native
 * call, where a loop over a 1 MiB region's bytes took 0.1-0.4 s of agent time under TCG (measured).
 */
const ZEROES = Buffer.alloc(64 * 1024);

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** How many bytes of `region` are not zero, and the offset of the first (-1: none). */
export function nonZeroBytes(region: Uint8Array): { nonZero: number; firstNonZero: number } {
  const bytes = asBuffer(region);
  let nonZero = 0;
  let firstNonZero = -1;
  for (let chunk = 0; chunk < bytes.length; chunk += ZEROES.length) {
    const end = Math.min(chunk + ZEROES.length, bytes.length);
    if (bytes.compare(ZEROES, 0, end - chunk, chunk, end) === 0) continue;
    for (let at = chunk; at < end; at++) {
      if (bytes[at] === 0) continue;
      if (firstNonZero === -1) firstNonZero = at;
      nonZero++;
    }
  }
  return { nonZero, firstNonZero };
}

/** How many bytes of `later` differ from `first` (same length), and the first offset that does (-1: none). */
export function regionDifference(first: Uint8Array, later: Uint8Array): { bytes: number; firstAt: number } {
  if (asBuffer(first).equals(later)) return { bytes: 0, firstAt: -1 };
  let bytes = 0;
  let firstAt = -1;
  for (let at = 0; at < first.length; at++) {
    if (first[at] === later[at]) continue;
    if (firstAt === -1) firstAt = at;
    bytes++;
  }
  return { bytes, firstAt };
}

/**
 * Compares bytes read in the guest with patterns built there: `read` is a native call that returns
 * bytes (readBytes, or a read in a child process), `expect` the patterns those bytes must be, one
 * after another. Only the verdict travels, never the bytes (1.4 MB of base64 per MiB).
 */
export interface CheckPatternArgs {
  read: NativeArgs;
  expect: GuestPattern[];
}

/** Where bytes first differ from the patterns they should hold; a checkPattern that found them equal answers null. */
export interface PatternMismatch {
  /** Byte offset, in what was read, of the first differing 8-byte word. */
  offset: number;
  /** That word as the patterns have it, and as read (little-endian). */
  expected: bigint;
  found: bigint;
  /** How many 8-byte words differ in all. */
  words: number;
}

/** A holder: the addon finds them (native/src/holders.cc), the agent answers a holders request with them. */
export type { Holder };

/**
 * Several native calls in one request, run in order in the guest exactly as one request each
 * would run them: only the round trips are saved. With `until`, the batch stops after the first
 * call whose outcome is that ('ok': it succeeded; 'error': it threw), so a caller can react
 * before anything after it runs.
 */
export interface BatchArgs {
  calls: NativeArgs[];
  until?: 'ok' | 'error';
}

/** One call's outcome in a batch: its value, or what it threw (as a failed request reports it). */
export type BatchOutcome = { ok: true; value: unknown } | { ok: false; error: ErrorInfo };

/**
 * Runs a profile's setup in the agent (guest/setup-api.ts): the module is the
 * host's bundle of the profile's "setup" (tools/test/setup-bundle.ts), at a
 * path the guest sees read-only; its default export's open() gets the addon,
 * `device` and `params` (the profile's "setupParams").
 */
export interface TargetOpenArgs {
  module: string;
  device: string;
  params: Record<string, unknown>;
}

/**
 * The file types as `stat -L -c %F` names them (coreutils file_type), for stat's answer; an empty
 * regular file too is a 'regular file'. 'weird file': no type bits at all, as an anonymous inode's
 * mode has (alloc_anon_inode: S_IRUSR | S_IWUSR; a dma-buf's file, dma_buf_getfile, 6.1).
 */
export const FILE_TYPES = ['regular file', 'directory', 'character special file', 'block special file', 'fifo', 'socket', 'weird file'] as const;
export type FileType = (typeof FILE_TYPES)[number];

/** stat(2) of a path, links followed, as `stat -L -c '%d %i %F'` prints it: st_dev as glibc encodes it, st_ino in decimal, the type. */
export interface FileStat {
  dev: number;
  ino: string;
  type: FileType;
}

/** A read(2) or write(2) at a file position of a fresh open of `path` (pread/pwrite), as `dd skip=`/`seek=` makes. */
export interface FileAt {
  path: string;
  offset: bigint;
}

/**
 * Every request: its arguments and what a successful answer's value holds.
 * The agent answers each op with its result (guest/agent.ts), the host's
 * client returns it typed (tools/qemu/guest-client.ts request), and
 * guest/protocol-check.ts checks both on arrival.
 */
export interface Ops {
  /** Runs a command; its output comes as OutputEvents while it runs. */
  exec: { args: ExecArgs; result: ExecResult };
  /** The function's return value (typed by tools/qemu/guest-client.ts RemoteNative). */
  native: { args: NativeArgs; result: unknown };
  /** One outcome per call run. */
  batch: { args: BatchArgs; result: BatchOutcome[] };
  /** The agent says "pong". */
  ping: { args: Record<string, never>; result: string };
  /** Kernel log records after `since`; without it, none, and a cursor at the log's current end. */
  kmsg: { args: { since?: KmsgCursor }; result: KmsgRead };
  writePattern: { args: WritePatternArgs; result: undefined };
  fillRegion: { args: FillRegionArgs; result: undefined };
  checkPattern: { args: CheckPatternArgs; result: PatternMismatch | null };
  /**
   * Every fd and mapping of every process in the guest that refers to one of `paths`: the same
   * device number for a device node (an alias node counts), the same inode for any other file.
   */
  holders: { args: { paths: string[] }; result: Holder[] };
  /** A file's whole content as text, read by the agent itself (e.g. /proc/self/smaps: the agent's own mappings). */
  readFile: { args: { path: string }; result: string };
  sampleRegion: { args: SampleRegionArgs; result: RegionSample };
  /** Writes `data` to a file with one write(2) after open(O_WRONLY|O_CREAT|O_TRUNC), as a shell's `printf %s data > path` does. */
  writeFile: { args: { path: string; data: string }; result: undefined };
  /** stat(2) of a path, links followed: what `stat -L` says, without a process to spawn. */
  stat: { args: { path: string }; result: FileStat };
  /** Opens `path` O_RDONLY, reads up to `length` bytes at `offset` with one pread(2), closes: the bytes read. */
  readAt: { args: FileAt & { length: number }; result: Uint8Array };
  /** Opens `path` O_WRONLY, writes `data` at `offset` with one pwrite(2), closes: the count written. */
  writeAt: { args: FileAt & { data: Uint8Array }; result: number };
  /** The object a profile's setup made: its fds are the agent's, for the native calls that follow. */
  targetOpen: { args: TargetOpenArgs; result: SetupObject };
  /** Runs `mmapkit fuzz` on a device in the agent's process (guest/fuzz.ts): sequences, the model's verdict, a shrunk failure. */
  fuzz: { args: FuzzArgs; result: FuzzReport };
  /** Answered by the host's relay (tools/qemu/relay.ts), never by the agent: attach to the current guest after a reboot. */
  reattach: { args: Record<string, never>; result: ReadyMessage };
}

export type Op = keyof Ops;
export type ArgsOf<O extends Op> = Ops[O]['args'];
export type ResultOf<O extends Op> = Ops[O]['result'];

/** One request's op and arguments; a union over every op unless narrowed. */
export type RequestBody<O extends Op = Op> = { [K in O]: { op: K; args: ArgsOf<K> } }[O];

export type Request<O extends Op = Op> = RequestBody<O> & { id: number };

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
 *
 * The partial line is kept as bytes and only the new chunk is searched for a
 * newline: a 1 MiB write request reaches the guest in ~4 KiB virtio-console
 * buffers, and re-decoding and re-splitting the growing line on every chunk
 * made it quadratic (about 2 s per MiB under TCG). Byte 0x0a never occurs
 * inside a multi-byte UTF-8 sequence, so splitting bytes at it is safe.
 */
export class LineDecoder {
  private pending: Buffer[] = [];
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array): string[] {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const lines: string[] = [];
    let start = 0;
    for (let newline = bytes.indexOf(10); newline !== -1; newline = bytes.indexOf(10, start)) {
      // A newline byte is never inside a UTF-8 sequence, so a line wholly in this chunk decodes on its own;
      // Buffer's decoder skips the concatenation's copy (0.3-0.4 ms of a 7 ms round trip in the guest, measured).
      let line: string;
      if (this.pending.length === 0) {
        line = bytes.toString('utf8', start, newline);
      } else {
        this.pending.push(bytes.subarray(start, newline));
        line = this.decoder.decode(Buffer.concat(this.pending));
        this.pending = [];
      }
      if (line.length > 0) lines.push(line);
      start = newline + 1;
    }
    // Copied: the caller may reuse the chunk's memory once push returns.
    if (start < bytes.length) this.pending.push(Buffer.from(bytes.subarray(start)));
    return lines;
  }

  /** Bytes received after the last newline (an incomplete UTF-8 character at the end left out). */
  get remainder(): string {
    return new TextDecoder().decode(Buffer.concat(this.pending), { stream: true });
  }
}

/**
 * The last patterns built, by what they stand for, the least recently used dropped first: cases
 * write and check the same few over and over, and in the guest a fresh MiB costs a fault per page
 * (page_poison=1 fills each) on top of the filling, 50-90 ms under TCG. Only patterns of up to
 * PATTERN_KEPT_BYTES are kept.
 */
const built = new Map<string, Buffer>();
const PATTERNS_KEPT = 4;
const PATTERN_KEPT_BYTES = 4 << 20;

/**
 * The bytes a GuestPattern stands for; the agent writes exactly these. The buffer may be one
 * returned before for the same pattern: read it, never write to it (copy it first).
 */
export function patternBytes(pattern: GuestPattern): Buffer {
  const key = pattern.kind === 'zeroes' ? `zeroes ${pattern.length}` : `pageIndex ${pattern.pageSize} ${pattern.first} ${pattern.count}`;
  const kept = built.get(key);
  if (kept !== undefined) {
    built.delete(key);
    built.set(key, kept);
    return kept;
  }
  const bytes = buildPattern(pattern);
  if (bytes.length <= PATTERN_KEPT_BYTES) {
    built.set(key, bytes);
    if (built.size > PATTERNS_KEPT) built.delete(built.keys().next().value!);
  }
  return bytes;
}

function buildPattern(pattern: GuestPattern): Buffer {
  if (pattern.kind === 'zeroes') return Buffer.alloc(pattern.length);
  const { pageSize, first, count } = pattern;
  if (pageSize % 8 !== 0) throw new RangeError('pageSize must be a multiple of 8');
  const bytes = Buffer.alloc(pageSize * count);
  for (let page = 0; page < count; page++) {
    const word = BigInt.asUintN(64, first + BigInt(page));
    bytes.writeBigUInt64LE(word, page * pageSize);
    // Doubling copies fill the rest of the page: far fewer calls than one write per word under TCG.
    for (let filled = 8; filled < pageSize; filled *= 2) {
      bytes.copy(bytes, page * pageSize + filled, page * pageSize, page * pageSize + Math.min(filled, pageSize - filled));
    }
  }
  return bytes;
}

/**
 * Where `bytes` differ from `expected` laid end to end (patternBytes of each), or null if they are
 * equal. Compared in 8-byte words, the unit of the page-index pattern; a length that differs, or one
 * that is not a whole number of words, is an error in the request rather than a mismatch.
 */
export function patternMismatch(bytes: Uint8Array, expected: readonly GuestPattern[]): PatternMismatch | null {
  const parts = expected.map(patternBytes);
  const got = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  if (got.length !== length) throw new RangeError(`read ${got.length} bytes where the patterns make ${length}`);
  if (length % 8 !== 0) throw new RangeError(`the patterns make ${length} bytes, not a whole number of 8-byte words`);
  // Part by part against the kept patterns: no second MiB to allocate when they match, as they mostly do.
  let at = 0;
  const equal = parts.every((part) => {
    const same = got.subarray(at, at + part.length).equals(part);
    at += part.length;
    return same;
  });
  if (equal) return null;
  const want = Buffer.concat(parts);
  let first = -1;
  let words = 0;
  for (let offset = 0; offset < want.length; offset += 8) {
    // Bytes compared first: a BigInt per word for 128 Ki words is slow under TCG, and most words match.
    if (got.compare(want, offset, offset + 8, offset, offset + 8) === 0) continue;
    words += 1;
    if (first < 0) first = offset;
  }
  return { offset: first, expected: want.readBigUInt64LE(first), found: got.readBigUInt64LE(first), words };
}

/** One /dev/kmsg record (Documentation/ABI/testing/dev-kmsg). */
export interface KmsgRecord {
  /** syslog facility * 8 + level. */
  priority: number;
  seq: number;
  /** CLOCK_MONOTONIC when logged, microseconds. */
  usec: number;
  /** The record's text, \xNN escapes undone; may hold newlines. */
  text: string;
}

/**
 * Parses what one read() of /dev/kmsg returns: "prio,seq,usec,flags[,...];text\n"
 * then optional dictionary lines (" KEY=value\n"). The kernel escapes every
 * byte below 0x20, above 0x7e and the backslash itself as \xNN
 * (msg_add_ext_text, kernel/printk/printk.c), so the text's own newlines
 * come escaped and the first raw newline ends it. Undefined for anything
 * else.
 */
export function parseKmsgRecord(raw: string): KmsgRecord | undefined {
  const match = /^(\d+),(\d+),(\d+),[^;]*;([^\n]*)(\n|$)/.exec(raw);
  if (match === null) return undefined;
  // The text is printable ASCII once escaped, so latin1 maps it to bytes one to one; an escaped
  // UTF-8 character is several \xNN in a row and is decoded whole.
  const unescaped = match[4]!.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  const text = Buffer.from(unescaped, 'latin1').toString('utf8');
  return { priority: Number(match[1]), seq: Number(match[2]), usec: Number(match[3]), text };
}

/** A record as dmesg prints it: the timestamp on its first line only. */
export function kmsgLines(record: KmsgRecord): string[] {
  const seconds = Math.floor(record.usec / 1e6);
  const micros = String(record.usec % 1e6).padStart(6, '0');
  const [first, ...rest] = record.text.replace(/\n$/, '').split('\n');
  return [`[${String(seconds).padStart(5)}.${micros}] ${first ?? ''}`, ...rest];
}
