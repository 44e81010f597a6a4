// The guest agent's kernel log reader parses /dev/kmsg records (guest/protocol.ts,
// parseKmsgRecord) and prints them as dmesg does, for the conformance log gate;
// and the agent builds write patterns (patternBytes) that must equal the bytes
// the cases compare against, and compares what it reads with them (patternMismatch).
import { describe, expect, it } from 'vitest';
import { findings } from '../../tools/qemu/console.js';
import { pagePattern } from '../conformance/device.js';
import { kmsgLines, parseKmsgRecord, patternBytes, patternMismatch } from '../../guest/protocol.js';

describe('parseKmsgRecord', () => {
  it('reads priority, sequence number, timestamp and text', () => {
    expect(parseKmsgRecord('6,339,5140900,-;NET: Registered protocol family 10\n')).toEqual({
      priority: 6,
      seq: 339,
      usec: 5140900,
      text: 'NET: Registered protocol family 10',
    });
  });

  it('ignores the dictionary lines after the text and extra header fields', () => {
    const raw = '4,1021,12345678,c,extra;mmapkit: device ready\n SUBSYSTEM=misc\n DEVICE=c10:123\n';
    expect(parseKmsgRecord(raw)).toMatchObject({ priority: 4, seq: 1021, usec: 12345678, text: 'mmapkit: device ready' });
  });

  it('undoes \\xNN escapes: newlines, backslashes and UTF-8 split into bytes', () => {
    const raw = '12,7,1000,-;line one\\x0aline two \\x5c path caf\\xc3\\xa9\n';
    expect(parseKmsgRecord(raw)?.text).toBe('line one\nline two \\ path café');
  });

  it('accepts a record without its final newline (a read never splits one, but be lenient)', () => {
    expect(parseKmsgRecord('3,1,2,-;text')).toMatchObject({ seq: 1, text: 'text' });
  });

  it('rejects what is not a record', () => {
    for (const raw of ['', 'hello\n', '6,abc,1,-;x\n', '6,1,2,-no semicolon\n', ' SUBSYSTEM=misc\n']) {
      expect(parseKmsgRecord(raw), raw).toBeUndefined();
    }
  });

  it('handles sequence numbers and timestamps beyond 32 bits', () => {
    expect(parseKmsgRecord('6,4294967300,9007199254740,-;late\n')).toMatchObject({ seq: 4294967300, usec: 9007199254740 });
  });
});

describe('kmsgLines', () => {
  it('prints the timestamp as dmesg does, on the first line of the text only', () => {
    expect(kmsgLines({ priority: 4, seq: 1, usec: 12_345_678, text: 'first\nsecond' })).toEqual(['[   12.345678] first', 'second']);
    expect(kmsgLines({ priority: 4, seq: 1, usec: 5, text: 'early' })).toEqual(['[    0.000005] early']);
    expect(kmsgLines({ priority: 4, seq: 1, usec: 123_456_000_001, text: 'late' })).toEqual(['[123456.000001] late']);
  });

  it('gives lines the findings classifier reads as it reads dmesg', () => {
    const records = [
      '4,900,61234567,-;WARNING: CPU: 1 PID: 123 at mm/memory.c:2245 remap_pfn_range+0x1/0x2\n',
      '3,901,61234600,-;x86/PAT: node:12 freeing invalid memtype [mem 0xfebf0000-0xfebf0fff]\n',
      '1,902,61234700,-;BUG: Bad page map in process node  pte:8000000001234025 pmd:01234067\n',
      '6,903,61234800,-;mmapkit: loaded\n',
    ];
    const lines = records.flatMap((raw) => kmsgLines(parseKmsgRecord(raw)!));
    expect(findings(lines).map(({ kind, line }) => [kind, line])).toEqual([
      ['warning', 'WARNING: CPU: 1 PID: 123 at mm/memory.c:2245 remap_pfn_range+0x1/0x2'],
      ['pat', 'x86/PAT: node:12 freeing invalid memtype [mem 0xfebf0000-0xfebf0fff]'],
      ['bad-page', 'BUG: Bad page map in process node  pte:8000000001234025 pmd:01234067'],
    ]);
  });
});

describe('patternBytes', () => {
  it('gives zeroes', () => {
    expect(patternBytes({ kind: 'zeroes', length: 10 })).toEqual(Buffer.alloc(10));
  });

  it('gives the page-index pattern the cases compare against, page by page', () => {
    const bytes = patternBytes({ kind: 'pageIndex', pageSize: 4096, first: 5n, count: 3 });
    expect(bytes.length).toBe(3 * 4096);
    for (let i = 0; i < 3; i++) expect(bytes.subarray(i * 4096, (i + 1) * 4096)).toEqual(pagePattern(5n + BigInt(i), 4096n));
  });

  it('gives the same bytes again for the same pattern, and other bytes for another', () => {
    const pattern = { kind: 'pageIndex', pageSize: 64, first: 7n, count: 2 } as const;
    const again = patternBytes({ ...pattern });
    expect(patternBytes(pattern)).toEqual(again);
    expect(patternBytes({ ...pattern, first: 8n }).readBigUInt64LE(0)).toBe(8n);
    expect(patternBytes({ kind: 'zeroes', length: 128 })).toEqual(Buffer.alloc(128));
  });

  it('fills pages that are not a power of two in size', () => {
    const bytes = patternBytes({ kind: 'pageIndex', pageSize: 24, first: 1n, count: 2 });
    expect([0, 8, 16, 24, 32, 40].map((at) => bytes.readBigUInt64LE(at))).toEqual([1n, 1n, 1n, 2n, 2n, 2n]);
  });
});

describe('patternMismatch', () => {
  const page = { kind: 'pageIndex', pageSize: 64, first: 2n, count: 3 } as const;

  it('finds nothing in bytes that are the patterns laid end to end', () => {
    expect(patternMismatch(Buffer.concat([patternBytes(page), patternBytes(page)]), [page, page])).toBeNull();
  });

  it('names the first differing word, what it should hold and what it holds, and counts every word that differs', () => {
    const bytes = Buffer.from(patternBytes(page)); // a copy: patternBytes's own is not to be written
    bytes.fill(0, 64 + 8, 64 + 24); // two words of the second page (index 3)
    bytes.writeBigUInt64LE(0x6b6b6b6b6b6b6b6bn, 128 + 56); // the last word of the third
    expect(patternMismatch(bytes, [page])).toEqual({ offset: 72, expected: 3n, found: 0n, words: 3 });
  });

  it('refuses a read whose length is not the patterns\' length', () => {
    expect(() => patternMismatch(Buffer.alloc(64), [page])).toThrow(/read 64 bytes where the patterns make 192/);
  });
});
