// What a message must hold to be accepted (guest/protocol-check.ts), and what the host's
// client does with one that does not: a clear error for the request it answers, never a crash.
import { Duplex } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError, checkGuestMessage, checkRequest, checkResult, idOf, readRequest } from '../../guest/protocol-check.js';
import { type ReadyMessage, type Request, decodeMessage, encodeMessage, nonZeroBytes, regionDifference } from '../../guest/protocol.js';
import { GuestClient, GuestError } from '../../tools/qemu/guest-client.js';

/** A message as the other side decodes it. */
const overTheChannel = (message: unknown): unknown => decodeMessage(encodeMessage(message));

const READY: ReadyMessage = {
  type: 'ready',
  uptime: 1.5,
  kernel: '6.1.0-56-amd64',
  clocksource: 'tsc',
  pageSize: 4096,
  constants: { PROT_READ: 1, PROT_WRITE: 2, MAP_SHARED: 1 } as ReadyMessage['constants'],
  pid: 312,
};

describe('checkRequest', () => {
  it.each<Request>([
    { id: 1, op: 'exec', args: { argv: ['uname', '-r'], env: { LANG: 'C' } } },
    { id: 2, op: 'native', args: { fn: 'mmap', args: [0n, 4096n, 3, 1, 7, 2n ** 63n] } },
    { id: 3, op: 'batch', args: { calls: [{ fn: 'probe', args: [0x7f00n, 'read'] }], until: 'ok' } },
    { id: 4, op: 'ping', args: {} },
    { id: 5, op: 'kmsg', args: {} },
    { id: 6, op: 'kmsg', args: { since: { bootId: 'b0', seq: 12 } } },
    { id: 7, op: 'writePattern', args: { addr: 0x7f00_0000_0000n, pattern: { kind: 'pageIndex', pageSize: 4096, first: 3n, count: 2 } } },
    { id: 8, op: 'writePattern', args: { addr: 1n, pattern: { kind: 'zeroes', length: 16 } } },
    { id: 9, op: 'readFile', args: { path: '/proc/self/smaps' } },
    { id: 10, op: 'writeFile', args: { path: '/sys/kernel/debug/x', data: '0\n' } },
    { id: 11, op: 'reattach', args: {} },
    { id: 12, op: 'sampleRegion', args: { path: '/dev/fb0', offset: 0n, length: 1228800, gapsMs: [300, 450, 650] } },
    {
      id: 13,
      op: 'checkPattern',
      args: { read: { fn: 'readInChildAfterUnmap', args: [0x7f00n, 8192n, 2] }, expect: [{ kind: 'pageIndex', pageSize: 4096, first: 0n, count: 2 }] },
    },
    { id: 14, op: 'holders', args: { paths: ['/dev/mmapkit', '/dev/mmapkit-remap'] } },
    { id: 15, op: 'fillRegion', args: { path: '/dev/mmapkit', offset: 0n, pattern: { kind: 'zeroes', length: 4096 } } },
    { id: 16, op: 'fillRegion', args: { path: '/dev/video0', fd: 9, offset: 2n ** 40n, pattern: { kind: 'pageIndex', pageSize: 4096, first: 0n, count: 1 } } },
    { id: 17, op: 'stat', args: { path: '/dev/mmapkit' } },
    { id: 18, op: 'readAt', args: { path: '/dev/mmapkit', offset: 8192n, length: 19 } },
    { id: 19, op: 'writeAt', args: { path: '/dev/mmapkit', offset: 7n, data: Buffer.from([1, 2, 0, 255]) } },
  ])('accepts $op (id $id) as sent', (request) => {
    expect(checkRequest(overTheChannel(request))).toEqual(request);
  });

  it.each([
    ['not an object', 'ping', /^request must be an object, not "ping"$/],
    ['no id', { op: 'ping', args: {} }, /^request\.id must be an integer, not undefined$/],
    ['an unknown op', { id: 1, op: 'reboot', args: {} }, /^request\.op must be "exec" or .* or "reattach", not "reboot"$/],
    ['a path that is not a string', { id: 1, op: 'readFile', args: { path: 5 } }, /^readFile\.args\.path must be a string, not 5$/],
    ['an address that is not a BigInt', { id: 1, op: 'writePattern', args: { addr: 4096, pattern: { kind: 'zeroes', length: 1 } } }, /^writePattern\.args\.addr must be a BigInt/],
    ['an argv entry that is not a string', { id: 1, op: 'exec', args: { argv: ['ls', null] } }, /^exec\.args\.argv\[1\] must be a string, not null$/],
    ['arguments ping does not take', { id: 1, op: 'ping', args: { now: true } }, /^ping\.args\.now must be absent, not true$/],
    ['a fill without its pattern', { id: 1, op: 'fillRegion', args: { path: '/dev/mmapkit', offset: 0n } }, /^fillRegion\.args\.pattern must be an object/],
    ['a batch call without arguments', { id: 1, op: 'batch', args: { calls: [{ fn: 'close' }] } }, /^batch\.args\.calls\[0\]\.args must be an array, not undefined$/],
  ])('refuses %s with a ProtocolError naming the field', (_what, message, reason) => {
    expect(() => checkRequest(message)).toThrow(ProtocolError);
    expect(() => checkRequest(message)).toThrow(reason);
  });

  it('finds the id of a malformed message, to answer it', () => {
    expect(idOf({ id: 7, op: 'nope' })).toBe(7);
    expect(idOf({ id: '7' })).toBeUndefined();
    expect(idOf(null)).toBeUndefined();
  });
});

describe('readRequest', () => {
  it('reads a line as a request', () => {
    expect(readRequest(encodeMessage({ id: 3, op: 'readFile', args: { path: '/x' } }))).toEqual({ request: { id: 3, op: 'readFile', args: { path: '/x' } } });
  });

  it('answers a malformed request that names an id with EPROTO and the reason', () => {
    expect(readRequest('{"id":9,"op":"readFile","args":{}}')).toEqual({
      malformed: 'malformed request: readFile.args.path must be a string, not undefined',
      answer: { id: 9, ok: false, error: { message: 'malformed request: readFile.args.path must be a string, not undefined', code: 'EPROTO' } },
    });
  });

  it('has no one to answer for a line that is not JSON', () => {
    const read = readRequest('{"id":9,');
    expect(read).not.toHaveProperty('answer');
    expect(read).toMatchObject({ malformed: expect.stringMatching(/^malformed request: .*JSON/) as unknown });
  });
});

describe('checkResult', () => {
  it('passes each op its own kind of answer', () => {
    expect(checkResult('readFile', 'text')).toBe('text');
    expect(checkResult('exec', { code: null, signal: 'SIGKILL' })).toEqual({ code: null, signal: 'SIGKILL' });
    expect(checkResult('writeFile', undefined)).toBeUndefined();
    const read = { cursor: { bootId: 'b', seq: 3 }, lines: ['[    1.000000] x'], lost: 0, rebooted: false };
    expect(checkResult('kmsg', overTheChannel(read))).toEqual(read);
    const outcomes = [{ ok: true, value: 5n }, { ok: false, error: { message: 'EINVAL', code: 'EINVAL', errno: -22, address: 1n } }];
    expect(checkResult('batch', overTheChannel(outcomes))).toEqual(outcomes);
    expect(checkResult('reattach', overTheChannel(READY))).toEqual(READY);
    const still = { nonZero: 0, firstNonZero: -1 };
    expect(checkResult('sampleRegion', overTheChannel(still))).toEqual(still);
    const live = { nonZero: 48, firstNonZero: 30720, changed: { apartMs: 312, bytes: 48, firstAt: 30720 } };
    expect(checkResult('sampleRegion', overTheChannel(live))).toEqual(live);
    expect(checkResult('checkPattern', null)).toBeNull();
    const mismatch = { offset: 4096, expected: 1n, found: 0n, words: 512 };
    expect(checkResult('checkPattern', overTheChannel(mismatch))).toEqual(mismatch);
    const holders = [{ pid: 1, comm: 'node', kind: 'mapping', name: '7f00-7f01' }];
    expect(checkResult('holders', overTheChannel(holders))).toEqual(holders);
    const stat = { dev: 5, ino: '18446744073709551615', type: 'character special file' };
    expect(checkResult('stat', overTheChannel(stat))).toEqual(stat);
    expect(() => checkResult('stat', { ...stat, type: 'char' })).toThrow(/^the answer to stat\.type must be "regular file" or .*, not "char"$/);
    expect(checkResult('readAt', overTheChannel(new Uint8Array([0, 1])))).toEqual(Buffer.from([0, 1]));
    expect(checkResult('writeAt', 4)).toBe(4);
  });

  it.each([
    ['readFile', 42, /^the answer to readFile must be a string, not 42$/],
    ['kmsg', { cursor: { bootId: 'b', seq: 1 }, lines: 'x', lost: 0, rebooted: false }, /^the answer to kmsg\.lines must be an array/],
    ['writeFile', 'done', /^the answer to writeFile must be absent/],
    ['sampleRegion', { nonZero: 0, firstNonZero: -1, changed: { apartMs: 300, bytes: '48', firstAt: 0 } }, /^the answer to sampleRegion\.changed\.bytes must be an integer/],
    ['exec', { code: 0 }, /^the answer to exec\.signal must be a string, not undefined$/],
    ['reattach', { type: 'ready', uptime: 1, kernel: 'k', clocksource: 'tsc', pageSize: 4096 }, /^the answer to reattach\.constants must be an object/],
    ['reattach', { type: 'ready', uptime: 1, kernel: 'k', clocksource: 'tsc', pageSize: 4096, constants: {} }, /^the answer to reattach\.pid must be an integer, not undefined$/],
    ['checkPattern', { offset: 0, expected: 1, found: 0n, words: 1 }, /^the answer to checkPattern\.expected must be a BigInt/],
    ['holders', [{ pid: 1, comm: 'sh', kind: 'socket', name: '3' }], /^the answer to holders\[0\]\.kind must be "fd" or "mapping"/],
  ] as const)('refuses a %s answer of the wrong kind', (op, value, reason) => {
    expect(() => checkResult(op, value)).toThrow(reason);
  });
});

describe('checkGuestMessage', () => {
  it('tells the ready message, output and responses apart after a trip over the channel', () => {
    expect(checkGuestMessage(overTheChannel(READY))).toEqual(READY);
    const output = checkGuestMessage(overTheChannel({ id: 3, stream: 'stdout', data: Buffer.from('hi\n') }));
    expect(output).toMatchObject({ id: 3, stream: 'stdout' });
    expect(Buffer.from((output as { data: Uint8Array }).data).toString()).toBe('hi\n');
    expect(checkGuestMessage(overTheChannel({ id: 1, ok: true, value: 0n }))).toEqual({ id: 1, ok: true, value: 0n });
    const failure = { id: 2, ok: false, error: { message: 'EINVAL', code: 'EINVAL', errno: 22 } };
    expect(checkGuestMessage(overTheChannel(failure))).toEqual(failure);
  });

  it.each([
    ['a ready message without the page size', { ...READY, pageSize: undefined }, /^ready message\.pageSize must be an integer/],
    ['a constant that is not a number', { ...READY, constants: { PROT_READ: '1' } }, /^ready message\.constants\.PROT_READ must be an integer/],
    ['output that is not bytes', { id: 1, stream: 'stdout', data: 'hi' }, /^output\.data must be bytes/],
    ['a response without ok', { id: 1, value: 1 }, /^response\.ok must be true or false/],
    ['a failure without a message', { id: 1, ok: false, error: { code: 'EIO' } }, /^response\.error\.message must be a string/],
    ['a request', { op: 'ping', args: {} }, /^message\.id must be an integer/],
  ])('refuses %s', (_what, message, reason) => {
    expect(() => checkGuestMessage(message)).toThrow(reason);
  });
});

/** A client on a fake channel: `reply` sends lines as the agent would, `sent` is what the client wrote. */
function clientOnFakeChannel(onProtocolError?: (error: ProtocolError) => void): {
  client: GuestClient;
  reply: (line: string) => void;
  sent: () => { id: number; op: string }[];
} {
  const written: string[] = [];
  const channel = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk.toString());
      done();
    },
  });
  const client = new GuestClient(channel, { requestTimeoutMs: 5000, ...(onProtocolError !== undefined && { onProtocolError }) });
  return {
    client,
    reply: (line) => channel.push(`${line}\n`),
    sent: () => written.map((line) => decodeMessage(line) as { id: number; op: string }),
  };
}

describe('GuestClient', () => {
  it('answers each request with its op’s type, and carries the constants and page size in ready', async () => {
    const { client, reply, sent } = clientOnFakeChannel();
    reply(encodeMessage(READY).trim());
    expect((await client.ready).constants.PROT_READ).toBe(1);
    const text = client.readFile('/proc/self/maps');
    reply(JSON.stringify({ id: sent()[0]!.id, ok: true, value: '00400000-00401000 r--p 00000000 00:00 0' }));
    expect(await text).toMatch(/^00400000/);
    expect(sent()[0]).toMatchObject({ op: 'readFile', args: { path: '/proc/self/maps' } });
  });

  it('exists answers from stat: true for a file, false for ENOENT, and throws any other error', async () => {
    const { client, reply, sent } = clientOnFakeChannel();
    const answers = [
      { ok: true, value: { dev: 5, ino: '9', type: 'directory' } },
      { ok: false, error: { message: "ENOENT: no such file or directory, stat '/b'", code: 'ENOENT' } },
      { ok: false, error: { message: "EACCES: permission denied, stat '/c'", code: 'EACCES' } },
    ];
    const asked = ['/a', '/b', '/c'].map((path) => client.exists(path));
    answers.forEach((answer, i) => reply(JSON.stringify({ id: sent()[i]!.id, ...answer })));
    expect(sent().map((request) => request.op)).toEqual(['stat', 'stat', 'stat']);
    expect(await asked[0]).toBe(true);
    expect(await asked[1]).toBe(false);
    await expect(asked[2]).rejects.toMatchObject({ code: 'EACCES' });
  });

  it('fails a request whose answer is of the wrong kind with a ProtocolError, and goes on', async () => {
    const { client, reply, sent } = clientOnFakeChannel();
    const bad = client.readFile('/x');
    reply(JSON.stringify({ id: sent()[0]!.id, ok: true, value: { text: 'x' } }));
    await expect(bad).rejects.toThrow(new ProtocolError('the answer to readFile must be a string, not an object'));
    const good = client.request('ping', {});
    reply(JSON.stringify({ id: sent()[1]!.id, ok: true, value: 'pong' }));
    expect(await good).toBe('pong');
  });

  it('fails the request a malformed message names; reports one that names none, without failing others', async () => {
    const problems: ProtocolError[] = [];
    const { client, reply, sent } = clientOnFakeChannel((error) => problems.push(error));
    const first = client.readFile('/a');
    const second = client.readFile('/b');
    reply(JSON.stringify({ id: sent()[0]!.id, ok: false, error: { code: 'ENOENT' } }));
    await expect(first).rejects.toThrow(/^response\.error\.message must be a string/);
    reply('this is not JSON');
    reply(JSON.stringify({ hello: 'world' }));
    expect(problems.map((problem) => problem.message)).toEqual([
      expect.stringMatching(/^the guest sent a line that cannot be decoded: /),
      'message.id must be an integer, not undefined',
    ]);
    reply(JSON.stringify({ id: sent()[1]!.id, ok: false, error: { message: 'no such file', code: 'ENOENT' } }));
    await expect(second).rejects.toThrow(GuestError);
  });
});

/** A region of `length` zero bytes with the given bytes set, spanning the 64 KiB chunks nonZeroBytes compares at once. */
const sparseRegion = fc
  .integer({ min: 0, max: 3 * 65536 + 17 })
  .chain((length) => {
    // Anywhere, or on either side of a chunk's edge, where an off-by-one would hide.
    const anywhere = fc.nat({ max: Math.max(0, length - 1) });
    const nearAnEdge = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: -1, max: 0 })).map(([chunk, side]) => chunk * 65536 + side);
    const at = fc.oneof(anywhere, nearAnEdge).filter((offset) => offset < length);
    return fc.tuple(fc.constant(length), fc.array(fc.tuple(at, fc.integer({ min: 1, max: 255 })), { maxLength: length === 0 ? 0 : 20 }));
  })
  .map(([length, sets]) => {
    const bytes = Buffer.alloc(length);
    for (const [at, value] of sets) bytes[at] = value;
    return bytes;
  });

describe('nonZeroBytes', () => {
  it('counts the bytes that are not zero and finds the first, as a byte-by-byte count does', () => {
    fc.assert(
      fc.property(sparseRegion, (bytes) => {
        const nonZero = [...bytes].filter((byte) => byte !== 0).length;
        expect(nonZeroBytes(bytes)).toEqual({ nonZero, firstNonZero: bytes.findIndex((byte) => byte !== 0) });
      }),
      { numRuns: 50 },
    );
  });
});

describe('regionDifference', () => {
  it('agrees with a byte-by-byte comparison, whether the regions are equal or not', () => {
    fc.assert(
      fc.property(sparseRegion, fc.boolean(), (first, same) => {
        const later = Buffer.from(first);
        if (!same && later.length > 0) later[later.length >> 1] ^= 0xff;
        const differing = [...first].flatMap((byte, at) => (byte === later[at] ? [] : [at]));
        expect(regionDifference(first, later)).toEqual({ bytes: differing.length, firstAt: differing[0] ?? -1 });
      }),
      { numRuns: 50 },
    );
  });

  it('counts the bytes that differ and finds the first', () => {
    const first = Buffer.from([0, 1, 2, 3, 4, 5]);
    expect(regionDifference(first, Buffer.from(first))).toEqual({ bytes: 0, firstAt: -1 });
    expect(regionDifference(first, Buffer.from([0, 1, 9, 3, 9, 9]))).toEqual({ bytes: 3, firstAt: 2 });
    expect(regionDifference(first, Buffer.from([7, 1, 2, 3, 4, 5]))).toEqual({ bytes: 1, firstAt: 0 });
  });
});
