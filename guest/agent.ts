/**
 * The guest agent: runs inside the VM (started by guest/init.sh), serves the
 * host's requests over the virtio-serial port and exits when the host goes
 * away, after which init powers the guest off.
 *
 * A fault in the code under test must never take the agent down: native
 * calls report SIGSEGV/SIGBUS as errors (the addon guards every access), and
 * every request is answered, successfully or with an error.
 */
import { spawn } from 'node:child_process';
import { type BigIntStats, closeSync, constants, openSync, read, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type NativeAddon, isFunctionName, loadNative } from '../native/index.js';
import { ADDON_FILE } from '../native/location.js';
import type { FuzzArgs, FuzzReport } from './fuzz-types.js';
import { readRequest } from './protocol-check.js';
import { type SetupObject, type TargetSetup, checkSetupObject } from './setup-api.js';
import {
  type ArgsOf,
  type BatchArgs,
  type BatchOutcome,
  type CheckPatternArgs,
  type ErrorInfo,
  type ExecArgs,
  type ExecResult,
  type FileAt,
  type FileStat,
  type FileType,
  type FillRegionArgs,
  type KmsgCursor,
  type KmsgRead,
  type KmsgRecord,
  type NativeArgs,
  type Op,
  type ReadyMessage,
  type Request,
  type RegionAt,
  type RegionSample,
  type ResultOf,
  type SampleRegionArgs,
  type TargetOpenArgs,
  type WritePatternArgs,
  LineDecoder,
  encodeMessage,
  kmsgLines,
  nonZeroBytes,
  parseKmsgRecord,
  patternBytes,
  regionDifference,
  patternMismatch,
} from './protocol.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set (the agent is started by guest/init.sh)`);
  return value;
}

// With the hold point, from init.sh's copy: loading it costs about 0.15 s under TCG.
const native: NativeAddon = loadNative(path.join(required('MMAPKIT_ROOT'), ADDON_FILE));

/**
 * The kernel log since a cursor, read from /dev/kmsg in this process: no
 * `dmesg` to spawn per request (about 80 ms each under TCG). One fd stays
 * open between requests, so a reader that keeps up reads only the new
 * records; /dev/kmsg cannot seek to a sequence number (only to the start,
 * the end or the last clear), so a cursor behind the fd reopens it and skips
 * forward.
 *
 * Across a reboot (the host may boot a new guest under the same connection
 * after a crash): a cursor whose boot_id is not this boot's is answered from
 * the first record this boot's ring still holds, `rebooted` set. Nothing of
 * the old boot can be re-reported (its records died with it; the host's
 * console log has them), and nothing this boot logged is skipped, boot
 * messages included. Its `lost` counts only records lost after that start.
 *
 * Defined before the hold point, which drains it (skipToEnd); BOOT_ID, which
 * its answers carry, is read only after the go, once the generator is reseeded.
 */
class KmsgReader {
  private fd: number | undefined;
  /** The sequence number the fd's next record will have, -1 before the fd has given one. */
  private next = -1;
  // A record is at most CONSOLE_EXT_LOG_MAX (8 KiB) once escaped; a smaller read is EINVAL.
  private readonly buffer = Buffer.alloc(16384);

  /**
   * Reads up to the end of the log now, so that the first request reads only what came after. At
   * the hold point, before the guest is saved: the boot's several hundred records took about 0.6 s
   * to read under TCG, in the first request of every guest restored from it (a module load's).
   */
  skipToEnd(): void {
    if (this.fd === undefined) this.reopen();
    for (const record of this.drain()) void record;
  }

  read(since: KmsgCursor | undefined): KmsgRead {
    const rebooted = since !== undefined && since.bootId !== BOOT_ID;
    const from = since === undefined || rebooted ? undefined : since.seq;
    if (this.fd === undefined || rebooted || (from !== undefined && this.next > from)) this.reopen();
    const lines: string[] = [];
    let expected = from;
    let lost = 0;
    for (const record of this.drain()) {
      if (since === undefined) continue; // only the end is wanted
      if (expected !== undefined && record.seq < expected) continue;
      // Sequence numbers are consecutive; a gap is records overwritten before anyone read them.
      if (expected !== undefined) lost += record.seq - expected;
      expected = record.seq + 1;
      lines.push(...kmsgLines(record));
    }
    const end = Math.max(this.next, expected ?? 0);
    return { cursor: { bootId: BOOT_ID, seq: end }, lines, lost, rebooted };
  }

  private reopen(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    // A fresh fd starts at the oldest record the ring buffer holds.
    this.fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
    this.next = -1;
  }

  /** Every record up to the end of the log (EAGAIN). */
  private *drain(): Generator<KmsgRecord> {
    for (;;) {
      let length: number;
      try {
        length = readSync(this.fd!, this.buffer, 0, this.buffer.length, null);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'EAGAIN') return;
        // EPIPE: the records at the fd's position were overwritten; the kernel moved it on to the oldest one left.
        if (code === 'EPIPE') continue;
        throw error;
      }
      if (length === 0) return;
      const record = parseKmsgRecord(this.buffer.toString('latin1', 0, length));
      if (record === undefined) continue;
      this.next = record.seq + 1;
      yield record;
    }
  }
}

const kmsg = new KmsgReader();

/**
 * With the hold point (guest/init.sh, mmapkit.hold=1) the agent starts before
 * the guest is saved and waits, before anything that belongs to one run: it
 * says so on the FIFO `held` in MMAPKIT_HOLD, then reads the run's
 * parameters (MMAPKIT_*=VALUE lines) from the FIFO `go` there, which init.sh
 * writes once a guest goes on, restored or not, with the shares mounted.
 * Until then this process has opened nothing on a share (the addon is
 * init.sh's copy): the channel and every file of the run come after.
 */
function awaitGo(): void {
  const hold = process.env.MMAPKIT_HOLD;
  if (hold === undefined) return;
  delete process.env.MMAPKIT_HOLD;
  kmsg.skipToEnd();
  writeFileSync(path.join(hold, 'held'), 'held\n');
  for (const line of readFileSync(path.join(hold, 'go'), 'utf8').split('\n')) {
    const match = /^(MMAPKIT_[A-Z_]+)=(.*)$/.exec(line);
    if (match !== null) process.env[match[1]!] = match[2];
    else if (line !== '') throw new Error(`init.sh sent the held agent a line not understood: '${line}'`);
  }
}
awaitGo();

const port = openSync(required('MMAPKIT_PORT'), 'r+');

/** ioctl RNDRESEEDCRNG, _IO('R', 0x07) (include/uapi/linux/random.h). */
const RNDRESEEDCRNG = 0x5207n;

/**
 * A restored guest starts from the saved guest's random state (tools/qemu/snapshot.ts). init.sh mixes the
 * host's fresh bytes into the input pool, but the CRNG draws on that pool only at its next reseed, seconds to a
 * minute away (crng_has_old_seed, 6.1 and 6.12), so two restored guests could draw the same bytes: make test
 * saw two with the same boot_id, which the kernel log cursor names the boot by. Reseeding now, before
 * anything here reads boot_id, draws on the host's bytes (and RDSEED/RDRAND, crng_reseed) at once.
 * What this process drew before the save (V8's seed for Math.random) stays the saved guest's: the agent
 * draws nothing random itself.
 */
function reseedRandom(): void {
  const fd = native.open('/dev/urandom', constants.O_RDONLY);
  try {
    native.ioctl(fd, RNDRESEEDCRNG, new Uint8Array(0));
  } catch (error) {
    console.error(`mmapkit-agent: could not reseed the kernel's random generator: ${(error as Error).message}`);
  } finally {
    native.close(fd);
  }
}
reseedRandom();

// Writes block until the host has room; that back-pressure is what we want.
function send(message: unknown): void {
  const bytes = Buffer.from(encodeMessage(message));
  for (let written = 0; written < bytes.length; ) {
    written += writeSync(port, bytes, written);
  }
}

function errorInfo(error: unknown): ErrorInfo {
  if (!(error instanceof Error)) return { message: String(error) };
  const fields = error as Error & Partial<Omit<ErrorInfo, 'message'>>;
  return {
    message: error.message,
    ...(typeof fields.code === 'string' && { code: fields.code }),
    ...(typeof fields.errno === 'number' && { errno: fields.errno }),
    ...(typeof fields.syscall === 'string' && { syscall: fields.syscall }),
    ...(typeof fields.address === 'bigint' && { address: fields.address }),
  };
}

/**
 * A command that cannot be started ends as it would in a shell: 127 when it
 * does not exist, 126 when it is not executable, with the shell's one line
 * on its stderr. `mmapkit vm run -- CMD` passes these codes through.
 */
const NOT_STARTED: Record<string, { code: number; why: string }> = {
  ENOENT: { code: 127, why: 'command not found' },
  EACCES: { code: 126, why: 'permission denied' },
  ENOEXEC: { code: 126, why: 'cannot execute binary file' },
};

function exec(id: number, { argv, env, fds = [] }: ExecArgs): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = argv;
    if (command === undefined) {
      reject(new Error('exec needs a command'));
      return;
    }
    // Passed fds become the child's 3, 4, ... (libuv dup2s them, which drops O_CLOEXEC).
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', ...fds], env: { ...process.env, ...env } });
    child.stdout!.on('data', (data: Buffer) => send({ id, stream: 'stdout', data }));
    child.stderr!.on('data', (data: Buffer) => send({ id, stream: 'stderr', data }));
    child.on('error', (error: NodeJS.ErrnoException) => {
      const notStarted = child.pid === undefined ? NOT_STARTED[error.code ?? ''] : undefined;
      if (notStarted === undefined) {
        reject(error);
        return;
      }
      send({ id, stream: 'stderr', data: Buffer.from(`mmapkit: ${command}: ${notStarted.why}\n`) });
      resolve({ code: notStarted.code, signal: null });
    });
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
}

/** One of the addon's functions (native/api.ts FUNCTIONS), by name; its constants come with the ready message. */
function callNative({ fn, args }: NativeArgs): unknown {
  if (!isFunctionName(fn)) throw new Error(`the native addon has no function ${fn}`);
  return (native[fn] as (...values: unknown[]) => unknown).apply(native, args);
}

/** This boot's identity: a kmsg cursor from any other boot is from before a reboot. */
const BOOT_ID = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/**
 * The fuzz (guest/fuzz.ts, with fast-check) is a bundle of its own next to
 * the agent's, build/guest/fuzz.cjs, imported at its first request: every
 * other boot loads none of it.
 */
async function fuzz(args: FuzzArgs): Promise<FuzzReport> {
  const bundle = new URL('./fuzz.cjs', import.meta.url).href;
  const { fuzzOnDevice } = (await import(bundle)) as typeof import('./fuzz.js');
  return fuzzOnDevice(native, args);
}

function batch({ calls, until }: BatchArgs): BatchOutcome[] {
  const outcomes: BatchOutcome[] = [];
  for (const call of calls) {
    let outcome: BatchOutcome;
    try {
      outcome = { ok: true, value: callNative(call) };
    } catch (error) {
      outcome = { ok: false, error: errorInfo(error) };
    }
    outcomes.push(outcome);
    if (until !== undefined && outcome.ok === (until === 'ok')) break;
  }
  return outcomes;
}

function writePattern({ addr, pattern }: WritePatternArgs): void {
  native.writeBytes(addr, patternBytes(pattern));
}

/**
 * `use` of a region through a shared mapping made for it and undone after it, of `fd` or of the
 * node opened here (and closed again). In this process, not in a forked child: the addon's
 * guarded accesses turn a fault into an error and give up on a fault retried forever after its
 * stall budgets (native/src/fault_guard.h), and an oops panics the guest either way (oops=panic).
 * A 1 MiB read under TCG: 10-30 ms, against 66-75 ms for readInChild's fork, mapping and pipe.
 */
function throughRegion<T>({ path: device, fd, offset }: RegionAt, length: number, access: 'read' | 'write', use: (addr: bigint) => T): T {
  const c = native.constants;
  const write = access === 'write';
  const own = fd === undefined ? native.open(device, write ? c.O_RDWR : c.O_RDONLY) : undefined;
  try {
    const addr = native.mmap(0n, BigInt(length), write ? c.PROT_READ | c.PROT_WRITE : c.PROT_READ, c.MAP_SHARED, own ?? fd!, offset);
    try {
      return use(addr);
    } finally {
      native.munmap(addr, BigInt(length));
    }
  } finally {
    if (own !== undefined) native.close(own);
  }
}

/** One read of a region: nobody keeps it mapped in between (sampleRegion). */
function readRegion(region: RegionAt, length: number): Buffer {
  return throughRegion(region, length, 'read', (addr) => native.readBytes(addr, length));
}

/** What `stat -L -c '%d %i %F'` says of a path; the dev number as glibc encodes it (makedev), as Node gives it. */
function statOf(file: string): FileStat {
  const stats = statSync(file, { bigint: true });
  return { dev: Number(stats.dev), ino: stats.ino.toString(), type: fileType(stats) };
}

function fileType(stats: BigIntStats): FileType {
  if (stats.isFile()) return 'regular file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isCharacterDevice()) return 'character special file';
  if (stats.isBlockDevice()) return 'block special file';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isSocket()) return 'socket';
  // statSync follows links: what is left has no type bits (an anonymous inode's).
  return 'weird file';
}

/** One pread(2) or pwrite(2) on a fresh open of the file, closed after it whatever happens. */
function atPosition<T>({ path: file, offset }: FileAt, flags: number, use: (fd: number, position: number) => T): T {
  // Node's writeSync takes a Number position, and writes at the file's own position for anything else.
  const position = Number(offset);
  if (!Number.isSafeInteger(position) || position < 0) throw new RangeError(`offset ${offset} is not a position Node can pass to pread/pwrite (0 to 2^53 - 1)`);
  const fd = openSync(file, flags);
  try {
    return use(fd, position);
  } finally {
    closeSync(fd);
  }
}

function readAt({ length, ...at }: FileAt & { length: number }): Uint8Array {
  return atPosition(at, constants.O_RDONLY, (fd, position) => {
    const buffer = Buffer.alloc(length);
    return buffer.subarray(0, readSync(fd, buffer, 0, length, position));
  });
}

function writeAt({ data, ...at }: FileAt & { data: Uint8Array }): number {
  return atPosition(at, constants.O_WRONLY, (fd, position) => writeSync(fd, data, 0, data.length, position));
}

function fillRegion({ pattern, ...region }: FillRegionArgs): void {
  const bytes = patternBytes(pattern);
  throughRegion(region, bytes.length, 'write', (addr) => native.writeBytes(addr, bytes));
}

/**
 * The region read once and again after each gap, compared here with the first read and the one
 * before: only the counts travel. Other requests are served during the gaps; each read blocks
 * the agent while it runs.
 */
async function sampleRegion({ length, gapsMs, ...region }: SampleRegionArgs): Promise<RegionSample> {
  const read = (): { at: number; bytes: Buffer } => ({ at: Date.now(), bytes: readRegion(region, length) });
  const first = read();
  const sample: RegionSample = nonZeroBytes(first.bytes);
  let previous = first;
  for (const gap of gapsMs) {
    await new Promise((resolve) => setTimeout(resolve, gap));
    const next = read();
    for (const earlier of [first, previous]) {
      const difference = regionDifference(earlier.bytes, next.bytes);
      if (difference.bytes > 0) return { ...sample, changed: { apartMs: next.at - earlier.at, ...difference } };
    }
    previous = next;
  }
  return sample;
}

/** Runs the read (any native call that returns bytes) and compares what it gave with the patterns. */
function checkPattern({ read, expect }: CheckPatternArgs): ReturnType<typeof patternMismatch> {
  const bytes = callNative(read);
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`checkPattern: ${read.fn} does not return bytes`);
  return patternMismatch(bytes, expect);
}

/** Setup modules by path, imported once: a run opens the same setup once per case. */
const setups = new Map<string, Promise<TargetSetup>>();

async function loadSetup(module: string): Promise<TargetSetup> {
  let loaded = setups.get(module);
  if (loaded === undefined) {
    loaded = import(pathToFileURL(module).href).then((exports: { default?: unknown }) => {
      const setup = exports.default as Partial<TargetSetup> | undefined;
      if (typeof setup?.open !== 'function') throw new Error(`${module}: its default export is not a TargetSetup (no open())`);
      return setup as TargetSetup;
    });
    setups.set(module, loaded);
    loaded.catch(() => setups.delete(module));
  }
  return loaded;
}

/** Runs a profile's setup (guest/setup-api.ts) in this process, so that the fds it returns serve the native calls that follow. */
async function targetOpen({ module, device, params }: TargetOpenArgs): Promise<SetupObject> {
  const setup = await loadSetup(module);
  const object = setup.open({ native, c: native.constants, pageSize: native.pageSize(), device, params });
  const wrong = checkSetupObject(object, native.pageSize());
  if (wrong !== undefined) {
    for (const fd of new Set(object.fds)) {
      try {
        native.close(fd);
      } catch {
        // Already closed, or never an fd: the setup's object is refused either way.
      }
    }
    throw new Error(`${path.basename(module)}: open() returned ${wrong}`);
  }
  return object;
}


type AgentOp = Exclude<Op, 'reattach'>;

/** What the agent does for each op; each returns the op's result (guest/protocol.ts Ops). */
const HANDLERS: { [O in AgentOp]: (args: ArgsOf<O>, id: number) => ResultOf<O> | Promise<ResultOf<O>> } = {
  exec: (args, id) => exec(id, args),
  native: callNative,
  batch,
  ping: () => 'pong',
  kmsg: ({ since }) => kmsg.read(since),
  writePattern: (args) => {
    writePattern(args);
    return undefined;
  },
  fillRegion: (args) => {
    fillRegion(args);
    return undefined;
  },
  checkPattern,
  holders: ({ paths }) => native.holders(paths),
  readFile: ({ path: file }) => readFileSync(file, 'utf8'),
  sampleRegion,
  writeFile: ({ path: file, data }) => {
    writeFileSync(file, data);
    return undefined;
  },
  stat: ({ path: file }) => statOf(file),
  readAt,
  writeAt,
  targetOpen,
  fuzz,
};

async function answer<O extends AgentOp>({ id, op, args }: Request<O>): Promise<ResultOf<O>> {
  return HANDLERS[op](args, id);
}

async function handle(request: Request): Promise<void> {
  try {
    if (request.op === 'reattach') throw new Error("reattach is answered by the host's relay, not by the agent");
    send({ id: request.id, ok: true, value: await answer(request) });
  } catch (error) {
    send({ id: request.id, ok: false, error: errorInfo(error) });
  }
}

/** A line that is not a request is answered as an error when it names an id, else reported on the console. */
function serve(line: string): void {
  const read = readRequest(line);
  if ('request' in read) void handle(read.request);
  else if (read.answer !== undefined) send(read.answer);
  else console.error(`mmapkit-agent: ${read.malformed}`);
}

function readyMessage(): ReadyMessage {
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const clocksource = readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim();
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return { type: 'ready', uptime, kernel, clocksource, pageSize: native.pageSize(), constants: native.constants, pid: process.pid };
}

// The first write blocks until the host has connected; reading before that
// would see end-of-file (virtio_console returns 0 while no host is attached).
send(readyMessage());

/**
 * The channel is read into one buffer, reused: a read stream allocates a
 * fresh 64 KiB buffer per read, and under TCG with page_poison=1 faulting in
 * and checking those pages cost more than a millisecond of every round trip
 * (measured, docs/benchmarks.md "The round trip"). Each chunk is decoded
 * before the next read is issued; LineDecoder copies what it keeps.
 */
const channel = Buffer.allocUnsafeSlow(64 * 1024);
const decoder = new LineDecoder();

function readChannel(): void {
  read(port, channel, 0, channel.length, null, (error, length) => {
    if (error !== null) {
      console.error(`mmapkit-agent: channel error: ${error.message}`);
      process.exit(1);
    }
    if (length === 0) process.exit(0);
    for (const line of decoder.push(channel.subarray(0, length))) serve(line);
    readChannel();
  });
}
readChannel();
