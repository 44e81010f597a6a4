// The host–agent channel framing (guest/protocol.ts): NDJSON lines split from
// arbitrary chunks, BigInt and bytes carried as tagged values. What the
// messages must hold is protocol-check.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, LineDecoder } from '../../guest/protocol.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Decodes what an encoded message turns into on the other side. */
const roundTrip = (message: unknown): unknown => decodeMessage(encodeMessage(message));

describe('LineDecoder', () => {
  it('keeps a partial line until its newline arrives', () => {
    const decoder = new LineDecoder();
    expect(decoder.push(bytes('{"id":1,'))).toEqual([]);
    expect(decoder.remainder).toBe('{"id":1,');
    expect(decoder.push(bytes('"ok":true}\n{"id"'))).toEqual(['{"id":1,"ok":true}']);
    expect(decoder.remainder).toBe('{"id"');
    expect(decoder.push(bytes(':2}\n'))).toEqual(['{"id":2}']);
    expect(decoder.remainder).toBe('');
  });

  it('returns several lines from one chunk, in order', () => {
    const decoder = new LineDecoder();
    expect(decoder.push(bytes('one\ntwo\nthree\nfour'))).toEqual(['one', 'two', 'three']);
    expect(decoder.remainder).toBe('four');
  });

  it('drops empty lines', () => {
    const decoder = new LineDecoder();
    expect(decoder.push(bytes('\n\na\n\n\nb\n\n'))).toEqual(['a', 'b']);
    expect(decoder.remainder).toBe('');
  });

  it('reassembles a UTF-8 character split across chunks', () => {
    const line = bytes('{"s":"café ☃ 𝄞"}\n');
    const split = line.indexOf(0xc3) + 1; // between the two bytes of "é"
    const decoder = new LineDecoder();
    expect(decoder.push(line.subarray(0, split))).toEqual([]);
    expect(decoder.remainder).not.toContain('\ufffd');
    expect(decoder.push(line.subarray(split))).toEqual(['{"s":"café ☃ 𝄞"}']);
  });

  it('gives every non-empty line, whatever the chunks, though the reader overwrites its buffer after each push', () => {
    // The agent reads the channel into one buffer it reuses (guest/agent.ts readChannel).
    const lines = fc.array(fc.string({ unit: 'grapheme' }).map((line) => line.replaceAll('\n', '')), { maxLength: 8 });
    fc.assert(
      fc.property(lines, fc.array(fc.nat(), { maxLength: 8 }), (sent, cuts) => {
        const stream = bytes(sent.map((line) => `${line}\n`).join(''));
        const ends = [...new Set(cuts.map((cut) => cut % (stream.length + 1))), stream.length].sort((a, b) => a - b);
        const reused = new Uint8Array(stream.length);
        const decoder = new LineDecoder();
        const got: string[] = [];
        let start = 0;
        for (const end of ends) {
          reused.set(stream.subarray(start, end));
          got.push(...decoder.push(reused.subarray(0, end - start)));
          reused.fill(0x41);
          start = end;
        }
        expect(got).toEqual(sent.filter((line) => line.length > 0));
        expect(decoder.remainder).toBe('');
      }),
    );
  });

  it('survives being fed one byte at a time', () => {
    const messages = [{ id: 1, s: 'é☃𝄞' }, { id: 2, addr: 2n ** 63n }];
    const stream = bytes(messages.map(encodeMessage).join(''));
    const decoder = new LineDecoder();
    const lines: string[] = [];
    for (let i = 0; i < stream.length; i++) lines.push(...decoder.push(stream.subarray(i, i + 1)));
    expect(lines.map(decodeMessage)).toEqual(messages);
    expect(decoder.remainder).toBe('');
  });
});

describe('encodeMessage', () => {
  it('writes exactly one line, even when strings contain newlines', () => {
    const encoded = encodeMessage({ id: 1, ok: true, value: 'line one\nline two\r\n' });
    expect(encoded.endsWith('\n')).toBe(true);
    expect(encoded.indexOf('\n')).toBe(encoded.length - 1);
    expect(roundTrip({ value: 'line one\nline two\r\n' })).toEqual({ value: 'line one\nline two\r\n' });
  });
});

describe('BigInt values', () => {
  it.each([0n, 1n, 2n ** 32n, 2n ** 32n - 1n, 2n ** 63n, 2n ** 64n - 1n, -1n])('%s round-trips unchanged', (value) => {
    const decoded = roundTrip({ addr: value });
    expect(decoded).toEqual({ addr: value });
    expect(typeof (decoded as { addr: unknown }).addr).toBe('bigint');
  });

  it('travels as a decimal string, not a lossy JSON number', () => {
    expect(encodeMessage({ offset: 2n ** 64n - 1n })).toBe('{"offset":{"$big":"18446744073709551615"}}\n');
  });

  it('leaves ordinary numbers as numbers', () => {
    const decoded = roundTrip({ n: 4096, f: 0.5 }) as Record<string, unknown>;
    expect(decoded).toEqual({ n: 4096, f: 0.5 });
    expect(typeof decoded.n).toBe('number');
  });
});

describe('byte values', () => {
  it('sends a Buffer as bytes and receives a Buffer with the same content', () => {
    const data = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x0a]);
    const decoded = (roundTrip({ data }) as { data: unknown }).data;
    expect(Buffer.isBuffer(decoded)).toBe(true);
    expect((decoded as Buffer).equals(data)).toBe(true);
  });

  it('sends a plain Uint8Array as bytes and receives a Buffer', () => {
    const data = new Uint8Array([9, 8, 7, 0, 255]);
    const decoded = (roundTrip({ data }) as { data: unknown }).data;
    expect(Buffer.isBuffer(decoded)).toBe(true);
    expect([...(decoded as Buffer)]).toEqual([9, 8, 7, 0, 255]);
  });

  it('sends only the bytes of a view, not its whole underlying buffer', () => {
    const backing = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const view = backing.subarray(2, 5);
    expect([...((roundTrip({ view }) as { view: Buffer }).view)]).toEqual([3, 4, 5]);
    const bufferView = Buffer.from(backing).subarray(5);
    expect([...((roundTrip({ bufferView }) as { bufferView: Buffer }).bufferView)]).toEqual([6, 7, 8]);
  });

  it('sends empty bytes as empty bytes', () => {
    const decoded = (roundTrip({ data: new Uint8Array(0) }) as { data: unknown }).data;
    expect(Buffer.isBuffer(decoded) && decoded.length === 0).toBe(true);
  });
});

describe('nested messages', () => {
  it('round-trips BigInt and bytes inside objects and arrays', () => {
    const message = {
      id: 7,
      ok: true,
      value: {
        mapping: { addr: 0x7f00_0000_0000n, length: 2n ** 32n, flags: 3 },
        pages: [0n, 2n ** 63n, { contents: Buffer.from('page') }],
        name: 'mmapkit',
        missing: null,
      },
    };
    expect(roundTrip(message)).toEqual(message);
  });

  it('does not convert an object that merely has a $big or $bytes key among others', () => {
    expect(decodeMessage('{"v":{"$big":"5","unit":"pages"}}')).toEqual({ v: { $big: '5', unit: 'pages' } });
    expect(decodeMessage('{"v":{"$bytes":"AAEC","note":1}}')).toEqual({ v: { $bytes: 'AAEC', note: 1 } });
    const plain = { $big: '5', unit: 'pages' };
    expect(roundTrip({ v: plain })).toEqual({ v: plain });
  });

  it('does not convert a $big whose value is not a string', () => {
    expect(decodeMessage('{"v":{"$big":5}}')).toEqual({ v: { $big: 5 } });
  });
});
