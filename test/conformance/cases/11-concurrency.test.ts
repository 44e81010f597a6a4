/**
 * Concurrency (catalogue J7, D2, D3, E2, F3, F4; taxonomy #7, #9, #19): faults, mappings and unload
 * attempts from several threads and processes at the same moment, on both vCPUs.
 *
 * ->fault is not serialised by the core: on 6.1, do_user_addr_fault takes mmap_lock for read
 * (lock_mm_and_find_vma), so handle_mm_fault, do_fault, do_read_fault / do_shared_fault and
 * __do_fault run for every thread of a process at once; on 6.12 the fault is first tried under the
 * per-VMA read lock alone (lock_vma_under_rcu), shared as well. Other processes have their own
 * locks. Only the PTE lock (insert_pfn, finish_fault; 6.1 and 6.12) decides which of two faults on
 * the same PTE installs it. A driver's own state touched in ->fault needs its own locking.
 *
 * The racing is native (raceFaults, raceMappings: native/src/race_*.cc): workers pinned to distinct
 * CPUs leave a spinning barrier together, round after round on fresh mappings, in a forked child
 * with a deadline, so that a deadlock or livelock fails the case with where each worker stopped.
 * Each loop is bounded by a count and a time cap.
 */
import type { TestContext } from 'vitest';
import { expect, it } from 'vitest';
import type { RaceFaultsOptions, RaceWorker } from '../../../native/api.js';
import { moduleName } from '../../../tools/qemu/guest-modules.js';
import { writePagePatterns } from '../device.js';
import { describeProfiles, MOVE_VETOES } from '../profile-suite.js';

/** Pages each round maps: enough faults per worker to overlap, few enough for short rounds under TCG. */
const WINDOW_PAGES = 32n;
/** Rounds of raceFaults, each on fresh mappings... */
const ROUNDS = 40;
/**
 * ...and iterations every raceMappings loop does, the faster loops going on until the slowest has done
 * as many, with this cap on either. The slowest is the fork loop: a fork of the agent's child takes
 * 15-40 ms under TCG where a map/munmap loop takes 1-2 ms, so 8 forks race 100-500 iterations of the
 * others (measured 2026-12-02). Each loop stopping at 40 of its own instead left the fork loop alone
 * for 300-400 ms of 500-650, about 5 of its 40 forks racing anything.
 */
const ITERATIONS = 8;
const TIME_LIMIT_MS = 700;
/**
 * Touches that must overlap another worker's (RaceWorker.overlapped) for a race to have been run. On an
 * idle 2-core host 40 rounds overlap about 400 times; with two other busy threads on the host (another
 * guest), about 3 times in 40 rounds, and a racy ->fault shows no wrong page at all (measured,
 * fixture-bug-racyfault, 2026-12-01): the vCPUs took turns, so the case cannot test its title.
 */
const MIN_OVERLAPS = 64;
/** Rounds go on past ROUNDS until MIN_OVERLAPS, for at most this long: a busy host gets more time, then a skip. */
const OVERLAP_TIME_LIMIT_MS = 2000;

/** Lines that list at most this many wrong pages or outcomes, then how many more. */
const SHOWN = 6;

const firstFew = (lines: string[]): string[] => (lines.length > SHOWN ? [...lines.slice(0, SHOWN), `... and ${lines.length - SHOWN} more`] : lines);

/** "worker 1 (cpu 1) round 3: page 5 held 4 (512 words wrong)" for the first wrong pages the workers saw. */
function wrongPages(workers: RaceWorker[]): string[] {
  const lines = workers.flatMap((worker, w) =>
    worker.wrong.map((wrong) => `worker ${w} (cpu ${worker.cpu}) round ${wrong.round}: page ${wrong.page} held ${wrong.seen} (${wrong.wrongWords} words wrong)`),
  );
  const unlisted = workers.reduce((sum, worker) => sum + worker.wrongCount - worker.wrong.length, 0);
  return firstFew(unlisted > 0 ? [...lines, `${unlisted} more wrong pages not recorded`] : lines);
}

/** What a forked child's exit status means (raceMappings' 'fork' role). */
const CHILD_EXITS: Record<string, string> = { '1': 'a forked child found a page holding another page\'s index' };

/** Outcomes of `workers` other than those `allowed` says are fine, as "worker 1 mremap-move EINVAL x3". */
/** Fails with every line in the message (chai's own rendering of a long array cuts it to "[ …(7) ]"). */
function expectNone(lines: string[], what: string): void {
  expect(lines.length, `${what}:\n  ${lines.join('\n  ')}`).toBe(0);
}

function unexpectedOutcomes(workers: RaceWorker[], allowed: (op: string, code: string) => boolean): string[] {
  return firstFew(
    workers.flatMap((worker, w) =>
      worker.outcomes
        .filter(({ op, code }) => !allowed(op, code))
        .map(({ op, code, count }) => `worker ${w} ${op} ${code} x${count}${op === 'child-exit' && code in CHILD_EXITS ? ` (${CHILD_EXITS[code]})` : ''}`),
    ),
  );
}

/** The CPUs a /proc/PID/status allows, counted from its Cpus_allowed_list ("0-1", "0,2-3"). */
function allowedCpus(status: string): number {
  const list = /^Cpus_allowed_list:\s*([\d,-]+)$/m.exec(status)?.[1];
  if (list === undefined) throw new Error('no Cpus_allowed_list of digits, commas and dashes in /proc/self/status');
  return list.split(',').reduce((sum, part) => {
    const [first, last = first] = part.split('-').map(Number);
    return sum + last! - first! + 1;
  }, 0);
}

describeProfiles('concurrency (J, D, E, F)', (t) => {
  const page = (): bigint => t.dut.page;
  const windowPages = (): bigint => (t.dut.size / page() < WINDOW_PAGES ? t.dut.size / page() : WINDOW_PAGES);
  const windowLength = (): bigint => windowPages() * page();

  /**
   * How many CPUs the agent may run on, as the workers are pinned to them (sched_getaffinity, what
   * nproc counts): its Cpus_allowed_list, read by the agent itself, no process to start. Asked once per profile.
   */
  let cpus: Promise<number> | undefined;
  const cpuCount = (): Promise<number> => (cpus ??= t.dut.guest.readFile('/proc/self/status').then(allowedCpus));

  /**
   * Puts the page-index pattern in the window through the writer (page i's words all hold i), then
   * unmaps it: every mapping the workers make is new, so their first touches fault.
   */
  const plantPattern = async (ctx: TestContext): Promise<void> => {
    const writer = t.needsWriter(ctx);
    const mapped = await t.mappings.map(writer, { length: windowLength() });
    await writePagePatterns(t.dut, mapped.addr, 0n, windowPages());
    await t.dut.native.munmap(mapped.addr, mapped.length);
  };

  /** Every worker touched pages, each on its own CPU, and every page held its own index. */
  const expectRightPages = async (workers: RaceWorker[], count: number): Promise<void> => {
    expectNone(wrongPages(workers), 'pages a worker found holding another page\'s index');
    expect(workers).toHaveLength(count);
    for (const worker of workers) expect(worker.touched, `worker on cpu ${worker.cpu} touched pages`).toBeGreaterThan(0);
    const cpus = Math.min(count, await cpuCount());
    expect(new Set(workers.flatMap((worker) => worker.ranOn)).size, 'CPUs the workers ran on').toBe(cpus);
  };

  const raceFaults = async (ctx: TestContext, options: Pick<RaceFaultsOptions, 'workers' | 'processes' | 'pages' | 'access'>): Promise<void> => {
    await plantPattern(ctx);
    const { c } = t.dut;
    const fd = await t.mappings.open(t.profile.device, options.access === 'write' ? c.O_RDWR : c.O_RDONLY);
    // On one CPU the workers only take turns, however long they go on (about 400 rounds in the 2 s,
    // 1-13 overlaps, each a worker preempted mid-fault): the base rounds still look for wrong pages, and
    // going on past them, which gives a busy host's vCPUs their chance, would buy nothing.
    const oneCpu = (await cpuCount()) === 1;
    const result = await t.dut.native.raceFaults(fd, t.dut.offset, windowLength(), {
      ...options,
      firstIndex: 0,
      rounds: ROUNDS,
      minOverlaps: oneCpu ? 0 : MIN_OVERLAPS,
      timeLimitMs: OVERLAP_TIME_LIMIT_MS,
    });
    expectNone(unexpectedOutcomes(result.workers, () => false), 'mmap and munmap failures');
    expect(result.failed).toBe(false);
    expect(result.rounds).toBeGreaterThan(0);
    // A wrong page fails the case however few faults overlapped; too few and no wrong page proves nothing.
    await expectRightPages(result.workers, options.workers);
    const overlaps = result.workers.reduce((sum, worker) => sum + worker.overlapped, 0);
    const touched = result.workers.reduce((sum, worker) => sum + worker.touched, 0);
    if (overlaps < MIN_OVERLAPS) {
      const why = oneCpu ? 'the guest has one CPU' : 'the host kept the vCPUs from running at once';
      ctx.skip(`the workers' faults overlapped ${overlaps} times in ${touched} touches (${result.rounds} rounds), fewer than ${MIN_OVERLAPS}: ${why}, so no race was run`);
    }
  };

  // catalogue J7: two threads of one process fault the same pages at once. Both may reach ->fault for
  // one page; the PTE lock lets one install it (insert_pfn returns VM_FAULT_NOPAGE to the other,
  // finish_fault finds the PTE there; 6.1 and 6.12), and both read the page's own content.
  it('threads faulting the same pages at the same moment each see the right page', async (ctx) => {
    await raceFaults(ctx, { workers: 2, processes: false, pages: 'same', access: 'read' });
  });

  // catalogue J7, taxonomy #19: threads fault different pages at once; a driver that keeps the page
  // being served in shared state maps one thread's page at the other's address.
  it('threads faulting distinct pages at the same moment each see their own page', { tags: ['core'] }, async (ctx) => {
    await raceFaults(ctx, { workers: 2, processes: false, pages: 'distinct', access: 'read' });
  });

  // catalogue J7 with more threads than CPUs, write faults (do_shared_fault, 6.1) where the
  // profile allows a shared writable mapping.
  it('four threads write-faulting distinct pages each see their own page', async (ctx) => {
    ctx.skip(!t.profile.writable, 'the profile allows no shared writable mapping (writable: false)');
    await raceFaults(ctx, { workers: 4, processes: false, pages: 'distinct', access: 'write' });
  });

  // catalogue J7, E1: processes with mappings of their own fault the same pages at once (each its own
  // mm, each fault under its own process's lock).
  it('processes faulting the same pages at the same moment each see the right page', async (ctx) => {
    await raceFaults(ctx, { workers: 2, processes: true, pages: 'same', access: 'read' });
  });

  // catalogue J7, taxonomy #19: the same race as between threads, from two processes.
  it('processes faulting distinct pages at the same moment each see their own page', async (ctx) => {
    await raceFaults(ctx, { workers: 2, processes: true, pages: 'distinct', access: 'read' });
  });

  /** The fd racing loops work on, with the pattern in place when the profile offers a writer. */
  const loopTarget = async (ctx: TestContext): Promise<{ fd: number; firstIndex: number }> => {
    const checked = t.writer !== undefined;
    if (checked) await plantPattern(ctx);
    else await ctx.annotate('no writer: the loops touch the pages without checking their content');
    return { fd: await t.mappings.open(t.profile.device, t.dut.c.O_RDONLY), firstIndex: checked ? 0 : -1 };
  };

  /** Every loop ran, and each worker saw every page it touched right. */
  const expectLoopsRan = (workers: RaceWorker[], roles: string[]): void => {
    expectNone(wrongPages(workers), 'pages a worker found holding another page\'s index');
    expect(workers.map((worker, w) => `${roles[w]}: ${worker.iterations > 0 ? 'ran' : 'never ran'}`)).toEqual(roles.map((role) => `${role}: ran`));
  };

  // catalogue D3, E2, F3, F4, taxonomy #7: mmap/munmap, split-and-move and fork loops on one device
  // at once. vm_ops->open and ->close run for splits, moves and fork copies (__split_vma, copy_vma,
  // remove_vma, 6.1 and 6.12; dup_mmap, 6.1) on both CPUs at once; every mapping must show the device's
  // pages, every forked child must see its copy right, and a split or move is done or vetoed with
  // an errno a driver may veto with.
  it('mmap/munmap, mremap and fork loops on one device at the same moment', async (ctx) => {
    const { fd, firstIndex } = await loopTarget(ctx);
    const roles = ['map', 'mremap', 'fork', 'map'] as const;
    const { workers } = await t.dut.native.raceMappings(fd, t.dut.offset, windowLength(), {
      roles: [...roles],
      firstIndex,
      iterations: ITERATIONS,
      timeLimitMs: TIME_LIMIT_MS,
    });
    const allowed = (op: string, code: string): boolean =>
      code === 'ok' || (op === 'child-exit' && code === '0') || (op.startsWith('mremap') && MOVE_VETOES.includes(code));
    expectNone(unexpectedOutcomes(workers, allowed), 'outcomes no correct driver gives');
    expectLoopsRan(workers, [...roles]);
  });

  // catalogue D2, taxonomy #9: while this process holds the device open, delete_module(O_NONBLOCK)
  // fails with EWOULDBLOCK (try_stop_module, 6.1; the rest 6.1 and 6.12) however the mappings come
  // and go around it: mapping, unmapping and forking on the other CPU never let the module go.
  it('unload attempts racing with mappings and forks never unload the module', async (ctx) => {
    ctx.skip(t.profile.module === undefined, 'the profile names no module to unload');
    const name = moduleName(t.profile.module!);
    const { fd, firstIndex } = await loopTarget(ctx);
    const roles = ['unload', 'map', 'fork'] as const;
    const { workers } = await t.dut.native.raceMappings(fd, t.dut.offset, windowLength(), {
      roles: [...roles],
      firstIndex,
      module: name,
      iterations: ITERATIONS,
      timeLimitMs: TIME_LIMIT_MS,
    });
    const allowed = (op: string, code: string): boolean =>
      op === 'delete_module' ? code === 'EAGAIN' : code === 'ok' || (op === 'child-exit' && code === '0');
    expectNone(unexpectedOutcomes(workers, allowed), 'outcomes no correct driver gives');
    expectLoopsRan(workers, [...roles]);
    expect((await t.dut.guest.readFile(`/sys/module/${name}/refcnt`)).trim()).not.toBe('0');
  });
});
