/**
 * The frame every conformance case runs in: one describe block per profile
 * of the run, a connection to the guest with the profile's module loaded,
 * mappings undone after each case, and the kernel log gate — a case during
 * which the guest kernel logged a BUG, WARNING, Oops, bad page or PAT error
 * fails with those lines, even when its own assertions passed.
 *
 * A profile with a "setup" gets a new object from it before each case and
 * has it released after (device.ts openObject, releaseObject): at most one
 * at a time, every open of the device in the case a dup of its fd. A case
 * listed in the profile's knownFindings is judged by
 * tools/test/known-findings.ts after it ran.
 */
import { type TestContext, afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject } from 'vitest';
import type { Profile } from '../../tools/profile.js';
import { type Finding, findings, isSplitMmioPat } from '../../tools/qemu/console.js';
import type { KmsgCursor } from '../../guest/protocol.js';
import { CRASHED_CODE, CRASHED_MARK, GONE_CODE, REBOOTED_CODE } from '../../tools/qemu/relay.js';
import { ensureModule } from '../../tools/qemu/guest-modules.js';
import { BRANCH_ANNOTATION } from '../../tools/test/case-results.js';
import { describeChange } from '../../tools/test/region-record.js';
import { type DeviceUnderTest, type ProfileTarget, openObject, openProfileTarget, releaseObject } from './device.js';
import { judgeKnownFinding } from '../../tools/test/known-findings.js';
import { seriesOf } from '../../tools/kernel.js';
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
  /** The device under test, connected from the first case on; the suite holds no fd of it between cases (catalogue D5 counts on that). */
  readonly dut: ProfileTarget;
  /** Mappings made by the current case, undone after it. */
  readonly mappings: Mappings;
  /** A path that can be mapped writable over the same memory: the device itself, or the profile's writer. */
  writer: string | undefined;
  /**
   * For cases that write content to read it back: skips when the profile offers no way, or when the
   * region changes on its own (needsStableContent), and restores zeroes afterwards.
   */
  needsWriter(ctx: TestContext): string;
  /**
   * For every case that compares content with what it wrote, what it read before, or what the
   * profile promises: skips, with the change as the reason, when the region changed on its own
   * while the run first read it (tools/test/region-record.ts), so a live device is never failed for it.
   */
  needsStableContent(ctx: TestContext): void;
  /**
   * Maps `length` bytes of the region MAP_PRIVATE (undone after the case). A refusal is
   * checked against the profile (wrong if it promises copy-on-write; only with an errno a
   * driver may refuse with, catalogue C1) and gives the errno.
   */
  mapPrivate(prot: number, length: bigint, openFlags?: number): Promise<PrivateMapping>;
  /** For cases about a MAP_PRIVATE mapping: mapPrivate, skipping the case when the driver refused it. */
  needsPrivate(ctx: TestContext, prot: number, length: bigint, openFlags?: number): Promise<bigint>;
  /**
   * For cases whose point is the access mode of the fd (O_RDONLY, O_WRONLY): skips a setup profile
   * whose object is reached through the setup's O_RDWR fd only (reach 'fork': every open is a dup
   * of it); for one that a second open reaches (reach 'reopen'), the case's opens of the node are
   * real opens in the mode asked for.
   */
  needsAccessMode(ctx: TestContext): void;
  /** For cases that map from a page inside the region: skips a profile whose driver maps only from the region's start (interiorOffsets: false). */
  needsInteriorOffsets(ctx: TestContext): void;
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
    // One object per case, made before it and released after it (afterEach).
    if (profile.setup !== undefined) {
      beforeEach(async () => {
        await openObject(need(dut)).catch(recoverFromCrash);
      });
    }
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
        target.agentPid = (await target.guest.reattach()).pid;
        if (profile.module !== undefined) await ensureModule(target.guest, profile.module, profile.moduleParams);
        mappings = new Mappings(target);
        // The dead guest's object died with it.
        target.object = undefined;
        logCursor = (await target.guest.kernelLog()).cursor;
      } catch (reattachError) {
        // No guest left (too many crashes): the remaining cases fail as not run; this one still crashed.
        if ((reattachError as { code?: string }).code !== GONE_CODE) throw reattachError;
      }
      throw crashed;
    };

    afterEach(async (ctx) => {
      // One read per case: what was logged since the last one, cleanup included. Without an object
      // to release after the undo steps, it is asked right behind them (Mappings.release).
      const readLog = (): ReturnType<typeof kernelLogSince> => kernelLogSince(need(dut), need(logCursor));
      let read: Awaited<ReturnType<typeof kernelLogSince>> | undefined;
      try {
        read = await need(mappings).release(profile.setup === undefined ? readLog : undefined).catch(recoverFromCrash);
      } finally {
        // Whatever the undo steps did, the object goes: the next case's setup must not find it held.
        if (profile.setup !== undefined) await releaseObject(need(dut)).catch(recoverFromCrash);
      }
      read ??= await readLog().catch(recoverFromCrash);
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
      await judgeKnownFindings(ctx);
    });

    /**
     * A case the profile lists in knownFindings: its failure, when it matches, is reported as a finding
     * about the driver and the case counted as passed (vitest's own `fails` flips a result the same way,
     * after the hooks); a pass, a skip or another failure fails it.
     */
    async function judgeKnownFindings(ctx: TestContext): Promise<void> {
      const series = seriesOf(need(dut).kernel);
      const known = profile.knownFindings.find((item) => item.case === ctx.task.name && (item.series?.includes(series) ?? true));
      const result = ctx.task.result;
      if (known === undefined || result === undefined) return;
      const state = result.state === 'fail' ? 'fail' : result.state === 'skip' ? 'skip' : 'pass';
      const verdict = judgeKnownFinding(known, state, (result.errors ?? []).map((error) => error.message ?? ''));
      if (verdict.kind === 'wrong') throw new Error(verdict.message);
      // ctx.annotate is refused once a case has a verdict: it runs again while the finding is recorded, then passes.
      result.state = 'run';
      result.errors = undefined;
      console.log(verdict.note);
      await ctx.annotate(verdict.note);
      result.state = 'pass';
    }
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

    function needsStableContent(ctx: TestContext): void {
      const { initial } = need(dut);
      if ('changed' in initial && initial.changed !== undefined) ctx.skip(`${describeChange(initial.changed)}: this case compares content`);
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
        needsStableContent(ctx);
        need(mappings).later(() => zeroBuffer(need(dut), writer!));
        return writer!;
      },
      needsStableContent,
      mapPrivate,
      needsAccessMode(ctx) {
        // A V4L2 buffer belongs to the node's queue (reach 'reopen'): an open in any access mode reaches it.
        ctx.skip(profile.setup !== undefined && need(dut).object?.reach !== 'reopen', "the object is the setup's, reached through its O_RDWR fd only: no fd of another access mode reaches it");
        need(mappings).openInAccessMode();
      },
      needsInteriorOffsets(ctx) {
        ctx.skip(!profile.interiorOffsets, 'the driver maps the region only from its start (interiorOffsets: false)');
      },
      async needsPrivate(ctx, prot, length, openFlags) {
        const mapped = await mapPrivate(prot, length, openFlags);
        if ('refused' in mapped) return ctx.skip(`the driver refused MAP_PRIVATE with ${mapped.refused} (profile private: ${profile.private}): no mapping to test`);
        return mapped.addr;
      },
    });
  });
}
