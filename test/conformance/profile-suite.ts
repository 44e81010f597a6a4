/**
 * The frame every conformance case runs in: one describe block per profile
 * of the run, a connection to the guest with the profile's module loaded,
 * mappings undone after each case, and the kernel log gate — a case during
 * which the guest kernel logged a BUG, WARNING, Oops, bad page or PAT error
 * fails with those lines, even when its own assertions passed.
 */
import { type TestContext, afterAll, afterEach, beforeAll, describe, expect, inject } from 'vitest';
import type { Profile } from '../../tools/profile.js';
import { type Finding, findings, isSplitMmioPat } from '../../tools/qemu/console.js';
import type { KmsgCursor } from '../../guest/protocol.js';
import { CRASHED_CODE, CRASHED_MARK, GONE_CODE, REBOOTED_CODE } from '../../tools/qemu/relay.js';
import { ensureModule } from '../../tools/qemu/guest-modules.js';
import { BRANCH_ANNOTATION } from '../../tools/test/case-results.js';
import { type DeviceUnderTest, type ProfileTarget, openProfileTarget } from './device.js';
import { Mappings, zeroBuffer } from './mappings.js';
import { settle } from './cases/vma.js';
import { REFUSALS } from '../../guest/allowed-errnos.js';

/** The allowed errno sets, shared with `mmapkit fuzz`'s model: one place (guest/allowed-errnos.ts). */
export { MOVE_VETOES, REFUSALS, WRITE_REFUSALS } from '../../guest/allowed-errnos.js';

/**
 * Records which of its allowed outcomes a case ran, so that its pass says what it passed as
 * (results.json: the case's `branch`, tools/test/case-results.ts).
 */
export async function ranBranch(ctx: TestContext, branch: string): Promise<void> {
  await ctx.annotate(branch, BRANCH_ANNOTATION);
}

/** A MAP_PRIVATE mapping made, or the errno the driver refused it with. */
export type PrivateMapping = { addr: bigint } | { refused: string };

export interface ProfileCase {
  profile: Profile;
  /** The device under test (open from the first case on). */
  readonly dut: ProfileTarget;
  /** Mappings made by the current case, undone after it. */
  readonly mappings: Mappings;
  /** A path that can be mapped writable over the same memory: the device itself, or the profile's writer. */
  writer: string | undefined;
  /** For cases that must write content: skips when the profile offers no way, and restores zeroes afterwards. */
  needsWriter(ctx: TestContext): string;
  /** What `sh -c script` prints in the guest; throws if it fails. */
  sh(script: string): Promise<string>;
  /**
   * Maps `length` bytes of the region MAP_PRIVATE (undone after the case). A refusal is
   * checked against the profile (wrong if it promises copy-on-write; only with an errno a
   * driver may refuse with, catalogue C1) and gives the errno.
   */
  mapPrivate(prot: number, length: bigint, openFlags?: number): Promise<PrivateMapping>;
  /** For cases about a MAP_PRIVATE mapping: mapPrivate, skipping the case when the driver refused it. */
  needsPrivate(ctx: TestContext, prot: number, length: bigint, openFlags?: number): Promise<bigint>;
}

/**
 * The kernel log lines printed since `cursor`, read by the agent from /dev/kmsg (no process
 * spawned per case), and the cursor to read on from. Records the ring buffer overwrote before
 * they were read could have held a finding, so losing any fails the case rather than passing it
 * unseen. A cursor from before a guest reboot reads the new boot from its first record.
 */
async function kernelLogSince(dut: DeviceUnderTest, cursor: KmsgCursor): Promise<{ lines: string[]; cursor: KmsgCursor }> {
  const read = await dut.guest.kernelLog(cursor);
  if (read.lost > 0) {
    throw new Error(`${read.lost} kernel log records were overwritten before the log gate could read them: it cannot vouch for this case`);
  }
  return { lines: read.lines, cursor: read.cursor };
}

export function describeProfiles(area: string, body: (suite: ProfileCase) => void): void {
  const profiles = inject('profiles').map((profile) => [profile.name, profile] as const);
  describe.each(profiles)(`%s: ${area}`, (_name, profile: Profile) => {
    let dut: ProfileTarget | undefined;
    let mappings: Mappings | undefined;
    let logCursor: KmsgCursor | undefined;
    const writer = profile.writable ? profile.device : profile.writer;
    const need = <T>(value: T | undefined): T => {
      if (value === undefined) throw new Error('the device under test is not open (beforeAll failed)');
      return value;
    };

    beforeAll(async () => {
      dut = await openProfileTarget(profile);
      mappings = new Mappings(dut);
      logCursor = (await dut.guest.kernelLog()).cursor;
    });
    /**
     * The guest died under this case and the relay booted a new one: attach to it, load the
     * profile's module again, and forget what the dead guest held; then fail the case as CRASHED.
     */
    const recoverFromCrash = async (error: unknown): Promise<never> => {
      const code = (error as { code?: string }).code;
      if (code !== CRASHED_CODE && code !== REBOOTED_CODE) throw error;
      // Even if the case caught its own failed request, the crash is what this case is remembered for.
      const crashed = code === CRASHED_CODE ? error : new Error(`${CRASHED_MARK} ${(error as Error).message}`);
      const target = need(dut);
      try {
        await target.guest.reattach();
        if (profile.module !== undefined) await ensureModule(target.guest, profile.module, profile.moduleParams);
        mappings = new Mappings(target);
        logCursor = (await target.guest.kernelLog()).cursor;
      } catch (reattachError) {
        // No guest left (too many crashes): the remaining cases fail as not run; this one still crashed.
        if ((reattachError as { code?: string }).code !== GONE_CODE) throw reattachError;
      }
      throw crashed;
    };

    afterEach(async () => {
      await need(mappings).release().catch(recoverFromCrash);
      // One read per case: what was logged since the last one, cleanup included.
      const read = await kernelLogSince(need(dut), need(logCursor)).catch(recoverFromCrash);
      logCursor = read.cursor;
      const found = findings(read.lines);
      const kernelsOwn = (finding: Finding): boolean => isSplitMmioPat(finding, profile.mmio);
      for (const finding of found.filter(kernelsOwn)) {
        console.log(`kernel (catalogue F7, PAT on a split MMIO mapping; reported, not failed): ${finding.line}`);
      }
      const bad = found.filter((finding) => !kernelsOwn(finding));
      if (bad.length > 0) {
        throw new Error(`the guest kernel logged during this case:\n${bad.map((finding) => `  ${finding.line}`).join('\n')}`);
      }
    });
    afterAll(() => dut?.close());

    async function mapPrivate(prot: number, length: bigint, openFlags?: number): Promise<PrivateMapping> {
      const { native, c, offset } = need(dut);
      const fd = await need(mappings).open(profile.device, openFlags ?? c.O_RDWR);
      const mapped = await settle(native.mmap(0n, length, prot, c.MAP_PRIVATE, fd, offset));
      if ('code' in mapped) {
        expect(profile.private, 'the profile promises copy-on-write').not.toBe('cow');
        expect(REFUSALS).toContain(mapped.code);
        return { refused: mapped.code };
      }
      need(mappings).later(() => native.munmap(mapped.value, length));
      return { addr: mapped.value };
    }

    body({
      profile,
      get dut() {
        return need(dut);
      },
      get mappings() {
        return need(mappings);
      },
      writer,
      needsWriter(ctx) {
        ctx.skip(writer === undefined, 'the profile allows no writable mapping (writable: false, no writer)');
        need(mappings).later(() => zeroBuffer(need(dut), writer!));
        return writer!;
      },
      sh: (script) => need(dut).guest.run(['sh', '-c', script]),
      mapPrivate,
      async needsPrivate(ctx, prot, length, openFlags) {
        const mapped = await mapPrivate(prot, length, openFlags);
        if ('refused' in mapped) return ctx.skip(`the driver refused MAP_PRIVATE with ${mapped.refused} (profile private: ${profile.private}): no mapping to test`);
        return mapped.addr;
      },
    });
  });
}
