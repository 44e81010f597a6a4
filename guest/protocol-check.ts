/**
 * What a message must hold to be accepted, checked where it arrives: the
 * agent checks every request it reads, the relay every request a test worker
 * sends, and the host's client every message from the agent (a response
 * against the op it answers, guest/protocol.ts Ops). A message that fails is
 * a ProtocolError naming the field, answered or reported, never a crash.
 */
import type { ConstantName } from '../native/index.js';
import { FILE_TYPES, decodeMessage } from './protocol.js';
import type { FuzzArgs, FuzzFailure, FuzzModule, FuzzReplay, FuzzReport, FuzzStep, FuzzTarget, FuzzTiming } from './fuzz-types.js';
import type {
  ArgsOf,
  BatchOutcome,
  ErrorInfo,
  FileAt,
  GuestMessage,
  GuestPattern,
  Holder,
  KmsgCursor,
  NativeArgs,
  RegionAt,
  RegionChange,
  Op,
  OutputEvent,
  PatternMismatch,
  ReadyMessage,
  Request,
  RequestBody,
  Response,
  ResultOf,
  TargetOpenArgs,
} from './protocol.js';
import type { SetupObject } from './setup-api.js';

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Returns the value as T, or throws a ProtocolError naming `at`, the place in the message. */
type Check<T> = (value: unknown, at: string) => T;

function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'object' && value !== null) return 'an object';
  return String(value);
}

const refuse = (at: string, expected: string, value: unknown): never => {
  throw new ProtocolError(`${at} must be ${expected}, not ${shown(value)}`);
};

const string: Check<string> = (value, at) => (typeof value === 'string' ? value : refuse(at, 'a string', value));
const number: Check<number> = (value, at) => (typeof value === 'number' && Number.isFinite(value) ? value : refuse(at, 'a number', value));
const integer: Check<number> = (value, at) => (Number.isSafeInteger(value) ? (value as number) : refuse(at, 'an integer', value));
const boolean: Check<boolean> = (value, at) => (typeof value === 'boolean' ? value : refuse(at, 'true or false', value));
const bigint: Check<bigint> = (value, at) => (typeof value === 'bigint' ? value : refuse(at, 'a BigInt ({"$big": "..."})', value));
const bytes: Check<Uint8Array> = (value, at) => (value instanceof Uint8Array ? value : refuse(at, 'bytes ({"$bytes": "..."})', value));
const nothing: Check<undefined> = (value, at) => (value === undefined ? undefined : refuse(at, 'absent', value));
const anything: Check<unknown> = (value) => value;

const nullable = <T>(check: Check<T>): Check<T | null> => (value, at) => (value === null ? null : check(value, at));

const oneOf =
  <T extends string>(...allowed: T[]): Check<T> =>
  (value, at) =>
    allowed.includes(value as T) ? (value as T) : refuse(at, allowed.map((word) => JSON.stringify(word)).join(' or '), value);

const arrayOf =
  <T>(check: Check<T>): Check<T[]> =>
  (value, at) =>
    Array.isArray(value) ? value.map((item, index) => check(item, `${at}[${index}]`)) : refuse(at, 'an array', value);

/** A plain JSON object's fields. */
function fields(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) return refuse(at, 'an object', value);
  return value as Record<string, unknown>;
}

/** `{...}` when the field is there, `{}` when it is absent: spread into the checked object. */
function optional<K extends string, T>(record: Record<string, unknown>, key: K, check: Check<T>, at: string): { [P in K]?: T } {
  return record[key] === undefined ? {} : ({ [key]: check(record[key], `${at}.${key}`) } as { [P in K]?: T });
}

const recordOf =
  <T>(check: Check<T>): Check<Record<string, T>> =>
  (value, at) =>
    Object.fromEntries(Object.entries(fields(value, at)).map(([key, item]) => [key, check(item, `${at}.${key}`)]));

const kmsgCursor: Check<KmsgCursor> = (value, at) => {
  const record = fields(value, at);
  return { bootId: string(record.bootId, `${at}.bootId`), seq: integer(record.seq, `${at}.seq`) };
};

const nativeArgs: Check<NativeArgs> = (value, at) => {
  const record = fields(value, at);
  return { fn: string(record.fn, `${at}.fn`), args: arrayOf(anything)(record.args, `${at}.args`) };
};

const guestPattern: Check<GuestPattern> = (value, at) => {
  const record = fields(value, at);
  const kind = oneOf('zeroes', 'pageIndex')(record.kind, `${at}.kind`);
  if (kind === 'zeroes') return { kind, length: integer(record.length, `${at}.length`) };
  return {
    kind,
    pageSize: integer(record.pageSize, `${at}.pageSize`),
    first: bigint(record.first, `${at}.first`),
    count: integer(record.count, `${at}.count`),
  };
};

const regionChange: Check<RegionChange> = (value, at) => {
  const record = fields(value, at);
  return {
    apartMs: number(record.apartMs, `${at}.apartMs`),
    bytes: integer(record.bytes, `${at}.bytes`),
    firstAt: integer(record.firstAt, `${at}.firstAt`),
  };
};

const patternMismatch: Check<PatternMismatch> = (value, at) => {
  const record = fields(value, at);
  return {
    offset: integer(record.offset, `${at}.offset`),
    expected: bigint(record.expected, `${at}.expected`),
    found: bigint(record.found, `${at}.found`),
    words: integer(record.words, `${at}.words`),
  };
};

const holder: Check<Holder> = (value, at) => {
  const record = fields(value, at);
  return {
    pid: integer(record.pid, `${at}.pid`),
    comm: string(record.comm, `${at}.comm`),
    kind: oneOf('fd', 'mapping')(record.kind, `${at}.kind`),
    name: string(record.name, `${at}.name`),
  };
};

const errorInfo: Check<ErrorInfo> = (value, at) => {
  const record = fields(value, at);
  return {
    message: string(record.message, `${at}.message`),
    ...optional(record, 'code', string, at),
    ...optional(record, 'errno', integer, at),
    ...optional(record, 'syscall', string, at),
    ...optional(record, 'address', bigint, at),
  };
};

const batchOutcome: Check<BatchOutcome> = (value, at) => {
  const record = fields(value, at);
  return boolean(record.ok, `${at}.ok`) ? { ok: true, value: record.value } : { ok: false, error: errorInfo(record.error, `${at}.error`) };
};

/**
 * The addon's constants, as numbers by name. Which names there are is the
 * addon's to say (native/index.ts ConstantName, a type only), so the names
 * are taken as they come.
 */
const constants = (value: unknown, at: string): Readonly<Record<ConstantName, number>> =>
  recordOf(integer)(value, at) as Readonly<Record<ConstantName, number>>;

const readyMessage: Check<ReadyMessage> = (value, at) => {
  const record = fields(value, at);
  return {
    type: oneOf('ready')(record.type, `${at}.type`),
    uptime: number(record.uptime, `${at}.uptime`),
    kernel: string(record.kernel, `${at}.kernel`),
    clocksource: string(record.clocksource, `${at}.clocksource`),
    pageSize: integer(record.pageSize, `${at}.pageSize`),
    constants: constants(record.constants, `${at}.constants`),
    pid: integer(record.pid, `${at}.pid`),
  };
};

const targetOpenArgs: Check<TargetOpenArgs> = (value, at) => {
  const record = fields(value, at);
  return { module: string(record.module, `${at}.module`), device: string(record.device, `${at}.device`), params: recordOf(anything)(record.params, `${at}.params`) };
};

const setupObject: Check<SetupObject> = (value, at) => {
  const record = fields(value, at);
  return {
    fd: integer(record.fd, `${at}.fd`),
    fds: arrayOf(integer)(record.fds, `${at}.fds`),
    offset: bigint(record.offset, `${at}.offset`),
    size: bigint(record.size, `${at}.size`),
    reach: oneOf('reopen', 'fork')(record.reach, `${at}.reach`),
  };
};

const scalar: Check<string | number | boolean> = (value, at) =>
  typeof value === 'string' || typeof value === 'boolean' ? value : number(value, at);

const fuzzStep: Check<FuzzStep> = (value, at) => {
  const record = recordOf(scalar)(value, at);
  return { ...record, op: string(record.op, `${at}.op`) };
};

const fuzzModule: Check<FuzzModule> = (value, at) => {
  const record = fields(value, at);
  return { name: string(record.name, `${at}.name`), load: arrayOf(string)(record.load, `${at}.load`) };
};

const fuzzTarget: Check<FuzzTarget> = (value, at) => {
  const record = fields(value, at);
  return {
    name: string(record.name, `${at}.name`),
    device: string(record.device, `${at}.device`),
    size: integer(record.size, `${at}.size`),
    offset: integer(record.offset, `${at}.offset`),
    writable: boolean(record.writable, `${at}.writable`),
    initial: oneOf('zero', 'any')(record.initial, `${at}.initial`),
    private: oneOf('cow', 'rejected', 'any')(record.private, `${at}.private`),
    readWrite: boolean(record.readWrite, `${at}.readWrite`),
    ...optional(record, 'module', fuzzModule, at),
  };
};

const fuzzReplay: Check<FuzzReplay> = (value, at) => {
  const record = fields(value, at);
  if (record.steps !== undefined) return { steps: arrayOf(fuzzStep)(record.steps, `${at}.steps`) };
  return { path: string(record.path, `${at}.path`), ...optional(record, 'replayPath', string, at) };
};

const fuzzArgs: Check<FuzzArgs> = (value, at) => {
  const record = fields(value, at);
  return {
    target: fuzzTarget(record.target, `${at}.target`),
    ops: integer(record.ops, `${at}.ops`),
    seed: integer(record.seed, `${at}.seed`),
    ...optional(record, 'replay', fuzzReplay, at),
  };
};

const fuzzFailure: Check<FuzzFailure> = (value, at) => {
  const record = fields(value, at);
  return {
    error: string(record.error, `${at}.error`),
    steps: arrayOf(fuzzStep)(record.steps, `${at}.steps`),
    shrinks: integer(record.shrinks, `${at}.shrinks`),
    ...optional(record, 'path', string, at),
    ...optional(record, 'replayPath', string, at),
  };
};

const fuzzTiming: Check<FuzzTiming> = (value, at) => {
  const record = fields(value, at);
  const opTiming = (entry: unknown, where: string): { count: number; ms: number } => {
    const each = fields(entry, where);
    return { count: integer(each.count, `${where}.count`), ms: number(each.ms, `${where}.ms`) };
  };
  return { ops: recordOf(opTiming)(record.ops, `${at}.ops`), otherMs: number(record.otherMs, `${at}.otherMs`) };
};

const fuzzReport: Check<FuzzReport> = (value, at) => {
  const record = fields(value, at);
  return {
    passed: boolean(record.passed, `${at}.passed`),
    seed: integer(record.seed, `${at}.seed`),
    ops: integer(record.ops, `${at}.ops`),
    runs: integer(record.runs, `${at}.runs`),
    shrinkOps: integer(record.shrinkOps, `${at}.shrinkOps`),
    ms: number(record.ms, `${at}.ms`),
    ...optional(record, 'failure', fuzzFailure, at),
    ...optional(record, 'timing', fuzzTiming, at),
  };
};

const noArgs: Check<Record<string, never>> = (value, at) => {
  const extra = Object.keys(fields(value, at));
  return extra.length === 0 ? {} : refuse(`${at}.${extra[0]!}`, 'absent', fields(value, at)[extra[0]!]);
};

/** The region fillRegion and sampleRegion map (RegionAt). */
function regionAt(record: Record<string, unknown>, at: string): RegionAt {
  return { path: string(record.path, `${at}.path`), ...optional(record, 'fd', integer, at), offset: bigint(record.offset, `${at}.offset`) };
}

function fileAt(record: Record<string, unknown>, at: string): FileAt {
  return { path: string(record.path, `${at}.path`), offset: bigint(record.offset, `${at}.offset`) };
}

/** Each op's arguments, as the agent (or the relay, for reattach) accepts them. */
const ARGS: { [O in Op]: Check<ArgsOf<O>> } = {
  exec: (value, at) => {
    const record = fields(value, at);
    return { argv: arrayOf(string)(record.argv, `${at}.argv`), ...optional(record, 'env', recordOf(string), at), ...optional(record, 'fds', arrayOf(integer), at) };
  },
  native: nativeArgs,
  batch: (value, at) => {
    const record = fields(value, at);
    return { calls: arrayOf(nativeArgs)(record.calls, `${at}.calls`), ...optional(record, 'until', oneOf('ok', 'error'), at) };
  },
  ping: noArgs,
  kmsg: (value, at) => optional(fields(value, at), 'since', kmsgCursor, at),
  writePattern: (value, at) => {
    const record = fields(value, at);
    return { addr: bigint(record.addr, `${at}.addr`), pattern: guestPattern(record.pattern, `${at}.pattern`) };
  },
  fillRegion: (value, at) => {
    const record = fields(value, at);
    return { ...regionAt(record, at), pattern: guestPattern(record.pattern, `${at}.pattern`) };
  },
  checkPattern: (value, at) => {
    const record = fields(value, at);
    return { read: nativeArgs(record.read, `${at}.read`), expect: arrayOf(guestPattern)(record.expect, `${at}.expect`) };
  },
  holders: (value, at) => ({ paths: arrayOf(string)(fields(value, at).paths, `${at}.paths`) }),
  readFile: (value, at) => ({ path: string(fields(value, at).path, `${at}.path`) }),
  sampleRegion: (value, at) => {
    const record = fields(value, at);
    return {
      ...regionAt(record, at),
      length: integer(record.length, `${at}.length`),
      gapsMs: arrayOf(integer)(record.gapsMs, `${at}.gapsMs`),
    };
  },
  writeFile: (value, at) => {
    const record = fields(value, at);
    return { path: string(record.path, `${at}.path`), data: string(record.data, `${at}.data`) };
  },
  stat: (value, at) => ({ path: string(fields(value, at).path, `${at}.path`) }),
  readAt: (value, at) => {
    const record = fields(value, at);
    return { ...fileAt(record, at), length: integer(record.length, `${at}.length`) };
  },
  writeAt: (value, at) => {
    const record = fields(value, at);
    return { ...fileAt(record, at), data: bytes(record.data, `${at}.data`) };
  },
  targetOpen: targetOpenArgs,
  fuzz: fuzzArgs,
  reattach: noArgs,
};

/** Each op's successful answer. */
const RESULTS: { [O in Op]: Check<ResultOf<O>> } = {
  exec: (value, at) => {
    const record = fields(value, at);
    return { code: nullable(integer)(record.code, `${at}.code`), signal: nullable(string)(record.signal, `${at}.signal`) };
  },
  // The addon's own return types (native/index.ts NativeAddon) are its to keep.
  native: anything,
  batch: arrayOf(batchOutcome),
  ping: string,
  kmsg: (value, at) => {
    const record = fields(value, at);
    return {
      cursor: kmsgCursor(record.cursor, `${at}.cursor`),
      lines: arrayOf(string)(record.lines, `${at}.lines`),
      lost: integer(record.lost, `${at}.lost`),
      rebooted: boolean(record.rebooted, `${at}.rebooted`),
    };
  },
  writePattern: nothing,
  fillRegion: nothing,
  checkPattern: nullable(patternMismatch),
  holders: arrayOf(holder),
  readFile: string,
  sampleRegion: (value, at) => {
    const record = fields(value, at);
    return {
      nonZero: integer(record.nonZero, `${at}.nonZero`),
      firstNonZero: integer(record.firstNonZero, `${at}.firstNonZero`),
      ...optional(record, 'changed', regionChange, at),
    };
  },
  writeFile: nothing,
  stat: (value, at) => {
    const record = fields(value, at);
    return { dev: integer(record.dev, `${at}.dev`), ino: string(record.ino, `${at}.ino`), type: oneOf(...FILE_TYPES)(record.type, `${at}.type`) };
  },
  readAt: bytes,
  writeAt: integer,
  targetOpen: setupObject,
  fuzz: fuzzReport,
  reattach: readyMessage,
};

const OPS = Object.keys(ARGS) as Op[];

/** What the agent or the relay makes of one line: a request, or why not and, when the line names an id, the answer to send. */
export type ReadRequest = { request: Request } | { malformed: string; answer?: Response };

export function readRequest(line: string): ReadRequest {
  let message: unknown;
  try {
    message = decodeMessage(line);
    return { request: checkRequest(message) };
  } catch (error) {
    const malformed = `malformed request: ${(error as Error).message}`;
    const id = idOf(message);
    return id === undefined ? { malformed } : { malformed, answer: { id, ok: false, error: { message: malformed, code: 'EPROTO' } } };
  }
}

/** The id of a message that may be malformed, when it has one: who to answer. */
export function idOf(message: unknown): number | undefined {
  const id = typeof message === 'object' && message !== null ? (message as { id?: unknown }).id : undefined;
  return Number.isSafeInteger(id) ? (id as number) : undefined;
}

/** A request as sent by the host or a test worker; throws a ProtocolError for anything else. */
export function checkRequest(message: unknown): Request {
  const record = fields(message, 'request');
  const id = integer(record.id, 'request.id');
  const op = oneOf(...OPS)(record.op, 'request.op');
  return { id, ...checkBody(op, record.args) };
}

function checkBody<O extends Op>(op: O, args: unknown): RequestBody<O> {
  return { op, args: ARGS[op](args, `${op}.args`) };
}

/** A successful answer's value, checked against what `op` answers. */
export function checkResult<O extends Op>(op: O, value: unknown): ResultOf<O> {
  return RESULTS[op](value, `the answer to ${op}`);
}

/** A message from the agent (or the relay): the ready message, exec output, or a response whose value is checked later, against its request. */
export function checkGuestMessage(message: unknown): GuestMessage {
  const record = fields(message, 'message');
  if (record.type === 'ready') return readyMessage(record, 'ready message');
  const id = integer(record.id, 'message.id');
  if (record.stream !== undefined) {
    const output: OutputEvent = { id, stream: oneOf('stdout', 'stderr')(record.stream, 'output.stream'), data: bytes(record.data, 'output.data') };
    return output;
  }
  const response: Response = boolean(record.ok, 'response.ok')
    ? { id, ok: true, value: record.value }
    : { id, ok: false, error: errorInfo(record.error, 'response.error') };
  return response;
}
