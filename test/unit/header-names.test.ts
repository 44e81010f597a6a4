// The lists `mmapkit build` reads out of C headers (tools/builder/header-names.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BINDINGS_HEADER,
  STATS_HEADER,
  camelCase,
  constantNames,
  maxSizeMib,
  statCounters,
} from '../../tools/builder/header-names.js';
import { CONSTANT_NAMES, STAT_COUNTERS } from '../../native/index.js';

describe('header names', () => {
  it('reads every row of an X-macro, in order, skipping rows inside comments and past its last line', () => {
    const header = [
      '/* MMAPKIT_EVENT(before) is not in the list */',
      '#define MMAPKIT_STATS {\t\\',
      '\tMMAPKIT_EVENT(first);\t/* MMAPKIT_STATE(commented) */ \\',
      '\t/* a comment line */\t\\',
      '\tMMAPKIT_STATE(second);\t\\',
      '\tMMAPKIT_EVENT( third );\t\\',
      '}',
      'MMAPKIT_EVENT(after);',
    ].join('\n');
    expect(statCounters(header)).toEqual([
      { field: 'first', name: 'first', kind: 'event' },
      { field: 'second', name: 'second', kind: 'state' },
      { field: 'third', name: 'third', kind: 'event' },
    ]);
    expect(constantNames('#define MMAPKIT_NATIVE_CONSTANTS(X) \\\n  X(PROT_READ) \\\n  X(MAP_SHARED)\nX(O_RDWR)')).toEqual([
      'PROT_READ',
      'MAP_SHARED',
    ]);
  });

  it('fails on a header without the list, or with an empty one', () => {
    expect(() => statCounters('#define MMAPKIT_STATSX {}')).toThrow(/no #define MMAPKIT_STATS/);
    expect(() => statCounters('#define MMAPKIT_STATS {}')).toThrow(/lists no counter/);
    expect(() => constantNames('#define MMAPKIT_NATIVE_CONSTANTS(X)')).toThrow(/lists no constant/);
  });

  it('reads the largest buffer size as a decimal number of MiB, and nothing else', () => {
    expect(maxSizeMib('#define MMAPKIT_MAX_SIZE_MIB\t256\n')).toBe(256);
    expect(() => maxSizeMib('#define MMAPKIT_MAX_SIZE_MIB\t(1 << 8)\n')).toThrow(/not a positive decimal/);
    expect(() => maxSizeMib('#define MMAPKIT_MAX_SIZE_MIB\t0\n')).toThrow(/not a positive decimal/);
  });

  it('camelCases C names as the addon does', () => {
    expect(camelCase('mmap_einval_range')).toBe('mmapEinvalRange');
    expect(camelCase('live_vmas')).toBe('liveVmas');
    expect(camelCase('ok')).toBe('ok');
  });

  it('wrote native/generated from the headers as they are now (run `mmapkit build` after editing them)', () => {
    const stats = statCounters(readFileSync(STATS_HEADER, 'utf8'));
    const constants = constantNames(readFileSync(BINDINGS_HEADER, 'utf8'));
    expect(STAT_COUNTERS).toEqual(stats);
    expect(CONSTANT_NAMES).toEqual(constants);
    // live_vmas is the one counter a reset leaves (kmod/mmapkit-stats.c, mmapkit_stats_reset).
    expect(stats.filter((counter) => counter.kind === 'state').map((counter) => counter.field)).toEqual(['live_vmas']);
  });
});
