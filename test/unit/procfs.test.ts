// The /proc/PID/maps and smaps parser (guest/procfs.ts) on text in the kernel's format
// (fs/proc/task_mmu.c: show_map_vma, show_smap, show_smap_vma_flags).
import { describe, expect, it } from 'vitest';
import { parseMaps, parseMapsLine, parseSmaps, vmFlagLetters, vmaStartingAt } from '../../guest/procfs.js';

const DEVICE = '7f3a5c000000-7f3a5c002000 rw-s 00000000 00:05 123                        /dev/mmapkit-remap';
const PRIVATE_REMAP = '7f3a5c010000-7f3a5c012000 r--p 12345000 00:05 123                        /dev/mmapkit-remap';
const MAPS = [
  '55d0c3a00000-55d0c3a02000 r--p 00000000 fe:00 260386                     /usr/bin/node',
  '55d0c4a2b000-55d0c4b2b000 rw-p 00000000 00:00 0                          [heap]',
  '7f3a5b000000-7f3a5b100000 rw-p 00000000 00:00 0 ',
  DEVICE,
  PRIVATE_REMAP,
  '7f3a5d000000-7f3a5d001000 rw-s 00000000 00:1f 77                         /tmp/a file with spaces',
  '7ffc68d47000-7ffc68d68000 rw-p 00000000 00:00 0                          [stack]',
  'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
  '',
].join('\n');

const smapsEntry = (header: string, fields: Record<string, string>): string =>
  [header, ...Object.entries(fields).map(([name, value]) => `${`${name}:`.padEnd(16)}${value}`)].join('\n');

const SMAPS = [
  smapsEntry(MAPS.split('\n')[0]!, { Size: '8 kB', Rss: '8 kB', Locked: '0 kB', THPeligible: '0', VmFlags: 'rd mr mw me ' }),
  smapsEntry(DEVICE, { Size: '8 kB', Rss: '0 kB', Locked: '0 kB', VmFlags: 'rd wr sh mr mw me ms pf io de dd ' }),
  smapsEntry(PRIVATE_REMAP, { Size: '8 kB', Rss: '4 kB', Locked: '4 kB', VmFlags: 'rd mr mw me pf io de dd ' }),
  '',
].join('\n');

describe('parseMapsLine', () => {
  it('reads every column, the offset and addresses as BigInt', () => {
    expect(parseMapsLine(PRIVATE_REMAP)).toEqual({
      line: PRIVATE_REMAP,
      start: 0x7f3a5c010000n,
      end: 0x7f3a5c012000n,
      perms: 'r--p',
      offset: 0x12345000n,
      dev: '00:05',
      inode: '123',
      path: '/dev/mmapkit-remap',
    });
  });

  it('gives anonymous memory an empty path and keeps spaces inside a path', () => {
    const entries = parseMaps(MAPS);
    expect(entries.find((entry) => entry.start === 0x7f3a5b000000n)?.path).toBe('');
    expect(entries.find((entry) => entry.start === 0x7f3a5d000000n)?.path).toBe('/tmp/a file with spaces');
  });

  it.each(['', 'Size:                  8 kB', 'VmFlags: rd wr', 'not a maps line'])('refuses %j', (line) => {
    expect(parseMapsLine(line)).toBeUndefined();
  });
});

describe('parseMaps', () => {
  it('returns every vma in order, names such as [heap] and [stack] as paths', () => {
    const entries = parseMaps(MAPS);
    expect(entries.map((entry) => entry.path)).toEqual([
      '/usr/bin/node', '[heap]', '', '/dev/mmapkit-remap', '/dev/mmapkit-remap', '/tmp/a file with spaces', '[stack]', '[vsyscall]',
    ]);
    expect(entries.at(-1)?.end).toBe(0xffffffffff601000n);
  });

  it('finds the vma that starts at an address, and only there', () => {
    const entries = parseMaps(MAPS);
    expect(vmaStartingAt(entries, 0x7f3a5c000000n)?.line).toBe(DEVICE);
    expect(vmaStartingAt(entries, 0x7f3a5c001000n)).toBeUndefined();
  });
});

describe('parseSmaps', () => {
  const entries = parseSmaps(SMAPS);

  it('gives each vma its own fields', () => {
    expect(entries).toHaveLength(3);
    expect(entries.map((entry) => entry.rss)).toEqual([8, 0, 4]);
    expect(entries.map((entry) => entry.locked)).toEqual([0, 0, 4]);
    expect(entries[0]!.fields.get('THPeligible')).toBe('0');
    expect(entries[1]!.fields.has('THPeligible')).toBe(false);
  });

  it('reads VmFlags as letter pairs in the order printed, the field text trimmed', () => {
    const device = vmaStartingAt(entries, 0x7f3a5c000000n)!;
    expect([...device.flags]).toEqual(['rd', 'wr', 'sh', 'mr', 'mw', 'me', 'ms', 'pf', 'io', 'de', 'dd']);
    expect(device.fields.get('VmFlags')).toBe('rd wr sh mr mw me ms pf io de dd');
    expect(device.path).toBe('/dev/mmapkit-remap');
    expect(device.offset).toBe(0n);
  });

  it('reports a missing Rss or Locked as -1 and a missing VmFlags as no flags', () => {
    const [bare] = parseSmaps(`${DEVICE}\nSize:                  8 kB\n`);
    expect(bare).toMatchObject({ rss: -1, locked: -1 });
    expect(bare!.flags.size).toBe(0);
  });

  it('ignores fields before the first vma line', () => {
    expect(parseSmaps('Rss: 4 kB\n')).toEqual([]);
  });
});

describe('vmFlagLetters', () => {
  it.each([
    ['VmFlags: rd wr sh ', ['rd', 'wr', 'sh']],
    ['rd  wr\tsh', ['rd', 'wr', 'sh']],
    ['', []],
    ['VmFlags:', []],
  ])('%j', (text, letters) => {
    expect(vmFlagLetters(text)).toEqual(letters);
  });
});
