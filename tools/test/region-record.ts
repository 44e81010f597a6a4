/**
 * What a profile's region held when the run first read it, and whether it
 * held still: recorded once per run, before any case could write to it.
 *
 * Content cases compare what they read with what they wrote or what the
 * profile promises. A region that something else writes to (the kernel's
 * framebuffer console blinking its cursor into /dev/fb0) fails them on a
 * correct driver, so the run first reads the region a few times with nobody
 * mapping it in between, and when it changes, says so in one line and skips
 * the content cases with that reason instead of failing them.
 *
 * The record lives in the guest's /tmp: every file of the suite, whatever
 * its order and whichever worker runs it, reads the same one; a guest that
 * rebooted has none, and the first file to open the profile makes it again.
 */
import type { RegionChange, RegionSample } from '../../guest/protocol.js';
import type { Profile } from '../profile.js';
import type { GuestClient } from '../qemu/guest-client.js';
import { setupBundlePath } from './setup-bundle.js';

/** The record: the first read's non-zero bytes and any change the later reads saw, or why the region could not be read. */
export type RegionRecord = RegionSample | { error: string };

export interface Region {
  device: string;
  offset: bigint;
  length: number;
  /**
   * For a profile's setup object: the agent's fd of it, read through a mapping
   * of that fd (a second open of the node may not reach the object,
   * guest/setup-api.ts).
   */
  fd?: number;
  /** The profile's console key: read for longer (CONSOLE_GAPS_MS). */
  console?: boolean;
}

/**
 * A read, then four more after 300, 450, 650 and 1000 ms, each compared with
 * the first and the one before. fbcon's cursor blink (fb_flashcursor) toggles
 * the cursor every cur_blink_jiffies, which fbcon_cursor takes from the
 * console's vc_cur_blink_ms, DEFAULT_CURSOR_BLINK_MS = 200 ms (visual_init; 6.1),
 * later under TCG, where the work re-queues itself only after it ran. The first gap is longer than one toggle; gaps that are not multiples
 * of one another keep a blink from aliasing with the reads: against a
 * 200 ms toggle the read 1.4 s after the first is exactly 7 toggles (odd)
 * later, against 250 ms the 750 ms read is 3, against 300 ms the first gap is 1.
 * The last read, 2.4 s after the first, is for a blink that TCG slows down:
 * measured under TCG on 6.1 with fbcon bound to /dev/fb0 (profile key
 * console), the cursor's 48 bytes toggled all through 4 s of reads, and the
 * first pair of reads that differed was 1.0 s apart.
 */
export const STABILITY_GAPS_MS = [300, 450, 650, 1000];

/**
 * A region the profile says the kernel's console draws into (profile key console) is read on, up to 9.5 s after
 * the first read, until it changes: the blink is a guest timer, which TCG on a busy host delays past 2.4 s
 * (make test, 2026-11-30: one run in two saw no change). The reads stop at the first change, so a live
 * console costs no more than before; only a console that never blinks pays the whole cap.
 */
export const CONSOLE_GAPS_MS = [...STABILITY_GAPS_MS, 700, 1100, 1300, 1700, 2300];

/** One record per region: a setup's object may come at another offset each time it is made, so it is named by its node alone. */
function recordFile(region: Region): string {
  return `/tmp/mmapkit-region${region.device.replace(/\//g, '_')}@${region.fd === undefined ? region.offset : 'setup'}.json`;
}

/**
 * The region's record, read from the guest or, the first time in this guest, made and saved there.
 * `ready` (the profile's module loaded, say) is what making it needs: the saved record is asked
 * for at once, its answer a round trip behind whatever `ready` asked for, not one after it.
 */
export async function regionRecord(guest: GuestClient, region: Region, ready: Promise<void> = Promise.resolve()): Promise<RegionRecord> {
  const file = recordFile(region);
  const [saved] = await Promise.all([
    guest.readFile(file).catch((error: { code?: string }) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    }),
    ready,
  ]);
  if (saved !== '') return JSON.parse(saved) as RegionRecord;
  let record: RegionRecord;
  try {
    const { device, offset, length, fd } = region;
    record = await guest.sampleRegion({ path: device, ...(fd !== undefined && { fd }), offset, length, gapsMs: region.console === true ? CONSOLE_GAPS_MS : STABILITY_GAPS_MS });
  } catch (error) {
    // A fault handler that never installs a PTE ends in the addon's stall watchdog (guest/agent.ts readRegion), not in a hung agent.
    const { code, message } = error as { code?: string; message: string };
    record = { error: code ?? message };
  }
  await guest.writeFile(file, JSON.stringify(record));
  return record;
}

/** The change, as the run's line and the skip reasons say it. */
export function describeChange(change: RegionChange): string {
  const apart = (change.apartMs / 1000).toFixed(1);
  return `the region changed on its own between two reads ${apart} s apart (${change.bytes} bytes differ, first at offset ${change.firstAt})`;
}

/** The run's one line for a region that changed on its own. */
export const changedLine = (name: string, change: RegionChange): string => `${name}: ${describeChange(change)}: content cases are skipped`;

/**
 * Makes every profile's record in one guest before the first case runs and
 * returns, in profile order, how each region changed on its own, if it did.
 * The profiles are sampled side by side (the agent serves other requests
 * during the gaps), so a run pays the gaps once, not once per profile. A
 * setup profile's object is made for the sampling and released after it.
 */
export async function recordRegions(guest: GuestClient, profiles: ReadonlyArray<(Pick<Profile, 'device' | 'offset' | 'size' | 'setup'> & Partial<Pick<Profile, 'console'>>)>): Promise<(RegionChange | undefined)[]> {
  const records = await Promise.all(profiles.map((profile) => profileRecord(guest, profile)));
  return records.map((record) => ('changed' in record ? record.changed : undefined));
}

/**
 * The run's lines, in profile order: one for each profile whose region changed on its own in any
 * of the guests (`changes`: recordRegions of each), the first guest's change that was seen. A
 * guest's own record decides which of its cases skip.
 */
export function changedLines(profiles: ReadonlyArray<Pick<Profile, 'name'>>, changes: ReadonlyArray<ReadonlyArray<RegionChange | undefined>>): string[] {
  return profiles.flatMap(({ name }, index) => {
    const change = changes.map((guest) => guest[index]).find((seen) => seen !== undefined);
    return change !== undefined ? [changedLine(name, change)] : [];
  });
}

async function profileRecord(guest: GuestClient, profile: Pick<Profile, 'device' | 'offset' | 'size' | 'setup'> & Partial<Pick<Profile, 'console'>>): Promise<RegionRecord> {
  const { device, setup, console } = profile;
  if (setup === undefined) return regionRecord(guest, { device, offset: BigInt(profile.offset), length: profile.size!, console });
  const object = await guest.targetOpen({ module: setupBundlePath(setup.module), device, params: setup.params });
  try {
    return await regionRecord(guest, { device, offset: object.offset, length: Number(object.size), fd: object.fd, console });
  } finally {
    for (const fd of new Set(object.fds)) await guest.native.close(fd);
  }
}
