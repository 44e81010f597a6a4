// The region record (tools/test/region-record.ts) against a fake agent: made once per guest and
// then read back, an unreadable region recorded as its error, and one line per profile whose
// region changed on its own, in profile order.
import { describe, expect, it } from 'vitest';
import type { RegionSample, SampleRegionArgs } from '../../guest/protocol.js';
import { GuestError, type GuestClient } from '../../tools/qemu/guest-client.js';
import { STABILITY_GAPS_MS, changedLines, describeChange, recordRegions, regionRecord } from '../../tools/test/region-record.js';

/** A fake agent whose regions answer sampleRegion as given (an errno code: the read fails); files live in `files`. */
function fakeGuest(regions: Record<string, RegionSample | string>): { guest: GuestClient; files: Map<string, string>; sampled: SampleRegionArgs[] } {
  const files = new Map<string, string>();
  const sampled: SampleRegionArgs[] = [];
  const guest = {
    readFile: (file: string) =>
      files.has(file) ? Promise.resolve(files.get(file)!) : Promise.reject(new GuestError({ message: `ENOENT: ${file}`, code: 'ENOENT' })),
    writeFile: (file: string, data: string) => {
      files.set(file, data);
      return Promise.resolve();
    },
    sampleRegion: (args: SampleRegionArgs) => {
      sampled.push(args);
      const answer = regions[args.path] ?? 'ENOENT';
      return typeof answer === 'string' ? Promise.reject(new GuestError({ message: `${answer}: readInChild`, code: answer })) : Promise.resolve(answer);
    },
  } as unknown as GuestClient;
  return { guest, files, sampled };
}

const still: RegionSample = { nonZero: 0, firstNonZero: -1 };
const live: RegionSample = { nonZero: 48, firstNonZero: 35840, changed: { apartMs: 1012, bytes: 48, firstAt: 35840 } };
const region = (device: string) => ({ device, offset: 0n, length: 8192 });

describe('regionRecord', () => {
  it('samples the whole region with the stability gaps once, then reads the record back', async () => {
    const { guest, sampled } = fakeGuest({ '/dev/a': still });
    expect(await regionRecord(guest, region('/dev/a'))).toEqual(still);
    expect(await regionRecord(guest, region('/dev/a'))).toEqual(still);
    expect(sampled).toEqual([{ path: '/dev/a', offset: 0n, length: 8192, gapsMs: STABILITY_GAPS_MS }]);
  });

  it('asks for the saved record before `ready` is done, and samples only after it', async () => {
    const { guest, sampled } = fakeGuest({ '/dev/a': still });
    const asked: string[] = [];
    const readFile = guest.readFile.bind(guest);
    guest.readFile = (file: string) => {
      asked.push(file);
      return readFile(file);
    };
    let loaded!: () => void;
    const recording = regionRecord(guest, region('/dev/a'), new Promise<void>((resolve) => (loaded = resolve)));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect([asked.length, sampled.length]).toEqual([1, 0]);
    loaded();
    expect(await recording).toEqual(still);
    expect(sampled).toHaveLength(1);
  });

  it('fails as `ready` fails: nothing is sampled for a module that did not load', async () => {
    const { guest, sampled } = fakeGuest({ '/dev/a': still });
    await expect(regionRecord(guest, region('/dev/a'), Promise.reject(new Error('insmod failed')))).rejects.toThrow('insmod failed');
    expect(sampled).toEqual([]);
  });

  it('records a region that cannot be read as its errno, for the initial-content case to fail with', async () => {
    const { guest } = fakeGuest({ '/dev/a': 'ETIMEDOUT' });
    expect(await regionRecord(guest, region('/dev/a'))).toEqual({ error: 'ETIMEDOUT' });
  });
});

describe('recordRegions and changedLines', () => {
  const profile = (name: string, device: string) => ({ name, device, offset: 0, size: 4096 });
  const line = (name: string): string =>
    `${name}: the region changed on its own between two reads 1.0 s apart (48 bytes differ, first at offset 35840): content cases are skipped`;

  it('one line for each profile whose region changed on its own, in profile order', async () => {
    const { guest } = fakeGuest({ '/dev/a': live, '/dev/b': still, '/dev/c': live });
    const profiles = [profile('A', '/dev/a'), profile('B', '/dev/b'), profile('C', '/dev/c')];
    const changes = await recordRegions(guest, profiles);
    expect(changes).toEqual([live.changed, undefined, live.changed]);
    expect(changedLines(profiles, [changes])).toEqual([line('A'), line('C')]);
    expect(describeChange(live.changed!)).not.toContain('\n');
  });

  it('with several guests, one line per profile whose region changed in any of them', async () => {
    const profiles = [profile('A', '/dev/a'), profile('B', '/dev/b'), profile('C', '/dev/c')];
    const first = await recordRegions(fakeGuest({ '/dev/a': still, '/dev/b': live, '/dev/c': still }).guest, profiles);
    const second = await recordRegions(fakeGuest({ '/dev/a': live, '/dev/b': live, '/dev/c': still }).guest, profiles);
    expect(changedLines(profiles, [first, second])).toEqual([line('A'), line('B')]);
    expect(changedLines(profiles, [first.map(() => undefined), second.map(() => undefined)])).toEqual([]);
  });
});
