/**
 * The kernel comparison of `mmapkit explain --kernels` (tools/explain/compare.ts)
 * and the fault-lock attribution it rests on (tools/trace/tree.ts), on trace
 * excerpts recorded by `mmapkit explain --kernels all` (TCG, 2 vCPUs): the
 * mmap() graph and the first two faults on /dev/mmapkit-fault of each kernel,
 * verbatim, with the lock functions traced as graph roots (tools/trace/ftrace.ts).
 * They are kept as call outlines; recorded() rebuilds the tracer's lines from them.
 */
import { describe, expect, it } from 'vitest';
import { type KernelSide, baseName, compareKernels, isNoise, renderComparisonText } from '../../tools/explain/compare.js';
import type { ForkAfterCow } from '../../tools/explain/fork-probe.js';
import { parseFunctionGraph } from '../../tools/trace/graph.js';
import { renderComparisonHtml } from '../../tools/explain/html.js';
import { analyseTrace, lockStory } from '../../tools/trace/tree.js';

/**
 * A function_graph recording as the tracer prints it on one CPU for one task, from an outline: a
 * call a line, indented two spaces a level, followed by the µs the tracer recorded for it (on its
 * closing brace when it made calls); comment lines (trace markers, events) stand as they are.
 */
const recorded = (cpu: number, task: string, outline: string): string => {
  const line = (us: string, call: string, depth: number): string =>
    ` ${cpu})    ${task}    |${durationColumn(us)}|  ${'  '.repeat(depth)}${call}`;
  const rows = outline.split('\n').map((row) => ({ depth: (row.length - row.trimStart().length) / 2, text: row.trim() }));
  const lines: string[] = [];
  const open: { depth: number; us: string }[] = [];
  const closeFrom = (depth: number): void => {
    for (let call = open.at(-1); call && call.depth >= depth; call = open.at(-1)) {
      open.pop();
      lines.push(line(call.us, '}', call.depth));
    }
  };
  rows.forEach(({ depth, text }, i) => {
    closeFrom(depth);
    const at = text.lastIndexOf(' ');
    const [name, us] = [text.slice(0, at), text.slice(at + 1)];
    if (text.startsWith('/*')) lines.push(line('', text, depth));
    else if ((rows[i + 1]?.depth ?? 0) > depth) {
      lines.push(line('', `${name}() {`, depth));
      open.push({ depth, us });
    } else lines.push(line(us, `${name}();`, depth));
  });
  closeFrom(0);
  return lines.join('\n');
};

/** The duration column: blank on an entry line, else the µs marked + past 10, ! past 100, # past 1000. */
const durationColumn = (us: string): string => {
  if (us === '') return ' '.repeat(15);
  const value = Number(us);
  const mark = value >= 1000 ? '#' : value >= 100 ? '!' : value >= 10 ? '+' : ' ';
  return ` ${mark} ${us} us`.padEnd(15);
};

/** 6.1.0-56-amd64 (6.1.192): mmap(), then two faults on the mapping, each lock_mm_and_find_vma then handle_mm_fault. */
const TRACE_61 = recorded(0, 'node-173', `__x64_sys_mmap 597.911
  ksys_mmap_pgoff 578.671
    vm_mmap_pgoff 558.721
      security_mmap_file 31.060
        cap_mmap_file 2.670
        apparmor_mmap_file 5.930
        bpf_lsm_mmap_file 1.160
        ima_file_mmap 2.100
      do_mmap 513.571
        get_unmapped_area 57.041
          arch_get_unmapped_area_topdown 42.401
            get_mmap_base 1.740
            vm_unmapped_area 31.391
          security_mmap_addr 7.470
            cap_mmap_addr 1.450
            bpf_lsm_mmap_addr 1.540
        mmap_region 440.540
          do_mas_munmap 12.980
          can_vma_merge_before.isra.0 1.490
          vm_area_alloc 4.320
          mmap_file 40.500
            mmapkit_mmap_fault [mmapkit] 33.360
          vma_merge 2.130
          vma_mas_store 304.020
          vma_interval_tree_insert 3.910
          khugepaged_enter_vma 1.480
          perf_event_mmap 1.940
          uprobe_mmap 2.380
          vma_set_page_prot 7.920
            vma_wants_writenotify 3.010
      userfaultfd_unmap_complete 2.680
/* mmapkit: mapped 0x7fed2c428000 16384 */
/* mmapkit: touch */
/* page_fault_user: address=0x7fed2c428000 ip=0x7fed2c441d9e error_code=0x4 */
lock_mm_and_find_vma 10.690
  find_vma 3.310
handle_mm_fault 154.870
  __handle_mm_fault 150.820
    do_fault 144.620
      __do_fault 138.850
        mmapkit_vma_fault [mmapkit] 131.890
          mmapkit_buf_pfn [mmapkit] 17.410
          vmf_insert_pfn 45.450
            vmf_insert_pfn_prot 43.160
              pfn_modify_allowed 1.920
              track_pfn_insert 17.910
              insert_pfn 15.590
                __get_locked_pte 10.050
                  walk_to_pmd 4.830
          mmapkit_fault_around_pages [mmapkit] 4.390
/* page_fault_user: address=0x7fed2c429000 ip=0x7fed2c441d9e error_code=0x4 */
lock_mm_and_find_vma 4.000
  find_vma 1.820
handle_mm_fault 29.650
  __handle_mm_fault 26.700
    do_fault 23.320
      __do_fault 21.390
        mmapkit_vma_fault [mmapkit] 19.510
          mmapkit_buf_pfn [mmapkit] 1.100
          vmf_insert_pfn 13.170
            vmf_insert_pfn_prot 11.550
              pfn_modify_allowed 1.020
              track_pfn_insert 1.990
              insert_pfn 5.050
                __get_locked_pte 2.780
                  walk_to_pmd 0.990
          mmapkit_fault_around_pages [mmapkit] 0.930`);

/** 6.12.117+deb12-amd64: mmap(), then two faults, each lock_vma_under_rcu + handle_mm_fault (gives up), lock_mm_and_find_vma + handle_mm_fault. */
const TRACE_612 = recorded(1, 'node-213', `__x64_sys_mmap 3375.158
  ksys_mmap_pgoff 3369.148
    vm_mmap_pgoff 3361.567
      security_mmap_file 26.751
        cap_mmap_file 1.380
        apparmor_mmap_file 4.050
        bpf_lsm_mmap_file 1.040
        ipe_mmap_file 1.991
        ima_file_mmap 3.040
      do_mmap 3323.176
        __get_unmapped_area 59.680
          mm_get_unmapped_area_vmflags 47.250
            arch_get_unmapped_area_topdown 44.590
              get_mmap_base 1.660
              vm_unmapped_area 34.500
          security_mmap_addr 7.000
            cap_mmap_addr 1.340
            bpf_lsm_mmap_addr 1.090
        memfd_check_seals_mmap 2.420
        mmap_region 3248.626
          __mmap_region 3243.816
            vma_merge_new_range 6.810
              can_vma_merge_right 2.140
            vm_area_alloc 6.291
            mmapkit_mmap_fault [mmapkit] 49.860
            vma_merge_new_range 1.080
            default_send_IPI_single_phys 2620.031
            default_send_IPI_single_phys 4.870
            vma_link_file 89.871
              vma_interval_tree_insert 6.600
            khugepaged_enter_vma 11.020
              hugepage_pmd_enabled 1.830
              __thp_vma_allowable_orders 3.480
            ksm_add_vma 1.660
            perf_event_mmap 1.950
            vms_complete_munmap_vmas 1.540
            uprobe_mmap 1.960
            vma_set_page_prot 7.190
              vma_wants_writenotify 2.770
      userfaultfd_unmap_complete 2.030
/* mmapkit: mapped 0x7f9cb0755000 16384 */
/* mmapkit: touch */
/* page_fault_user: address=0x7f9cb0755000 ip=0x7f9cb076ed9e error_code=0x4 */
lock_vma_under_rcu 2.000
handle_mm_fault 10.970
  __handle_mm_fault 8.940
    pte_offset_map_nolock 2.610
      __pte_offset_map 0.850
    do_fault 2.920
lock_mm_and_find_vma 14.030
  find_vma 9.470
handle_mm_fault 151.111
  __handle_mm_fault 148.701
    pte_offset_map_nolock 2.500
      __pte_offset_map 0.810
    do_fault 143.231
      __do_fault 140.541
        mmapkit_vma_fault [mmapkit] 133.591
          mmapkit_buf_pfn [mmapkit] 17.700
          vmf_insert_pfn 43.791
            vmf_insert_pfn_prot 41.781
              pfn_modify_allowed 1.200
              track_pfn_insert 16.801
              insert_pfn 16.140
                __get_locked_pte 9.870
                  walk_to_pmd 3.590
                  __pte_offset_map_lock 2.660
                    __pte_offset_map 0.810
          mmapkit_fault_around_pages [mmapkit] 4.010
/* page_fault_user: address=0x7f9cb0756000 ip=0x7f9cb076ed9e error_code=0x4 */
lock_vma_under_rcu 1.700
handle_mm_fault 10.770
  __handle_mm_fault 8.970
    pte_offset_map_nolock 3.930
      __pte_offset_map 0.840
    do_fault 1.410
lock_mm_and_find_vma 3.470
  find_vma 1.450
handle_mm_fault 31.310
  __handle_mm_fault 29.310
    pte_offset_map_nolock 2.470
      __pte_offset_map 0.810
    do_fault 24.210
      __do_fault 22.400
        mmapkit_vma_fault [mmapkit] 20.700
          mmapkit_buf_pfn [mmapkit] 0.820
          vmf_insert_pfn 15.530
            vmf_insert_pfn_prot 14.020
              pfn_modify_allowed 0.790
              track_pfn_insert 2.080
              insert_pfn 7.780
                __get_locked_pte 5.910
                  walk_to_pmd 0.940
                  __pte_offset_map_lock 2.570
                    __pte_offset_map 0.800
          mmapkit_fault_around_pages [mmapkit] 0.830`);

const K61 = '6.1.0-56-amd64';
const K612 = '6.12.117+deb12-amd64';
const REMAP_FLAGS = 'rd wr sh mr mw me ms pf io de ar dd sd';
const ENOMEM: ForkAfterCow = { device: '/dev/mmapkit-remap', laterPage: { ok: true, childSawCopy: true }, firstPage: { ok: false, error: 'ENOMEM' } };

const side = (kernel: string, raw: string, overrides: Partial<KernelSide> = {}): KernelSide => ({
  kernel,
  traces: [{ label: 'fault device', raw, path: `build/trace/x/${kernel}/touch-mmapkit-fault.trace` }],
  vmFlags: [{ label: 'remap device', flags: REMAP_FLAGS }],
  forkAfterCow: ENOMEM,
  ...overrides,
});

describe('fault locks in the trace (analyseTrace)', () => {
  it('6.1: each fault is handled under mmap_lock, once', () => {
    const faults = analyseTrace(parseFunctionGraph(TRACE_61)).faults.filter((fault) => fault.inMapping);
    expect(faults).toHaveLength(2);
    for (const fault of faults) {
      expect(fault.locks).toEqual(['lock_mm_and_find_vma']);
      expect(fault.lockedBy).toBe('lock_mm_and_find_vma');
      expect(fault.vmaLockAttempt).toBeUndefined();
      expect(lockStory(fault)).toBe('handled under mmap_lock (lock_mm_and_find_vma)');
    }
  });

  it('6.12: each fault is tried under the per-VMA lock and retried under mmap_lock, still one fault', () => {
    const faults = analyseTrace(parseFunctionGraph(TRACE_612)).faults.filter((fault) => fault.inMapping);
    expect(faults).toHaveLength(2);
    for (const fault of faults) {
      expect(fault.locks).toEqual(['lock_vma_under_rcu', 'lock_mm_and_find_vma']);
      expect(fault.lockedBy).toBe('lock_mm_and_find_vma');
      expect(fault.vmaLockAttempt?.name).toBe('handle_mm_fault');
      expect(lockStory(fault)).toMatch(/^tried under the per-VMA lock \(lock_vma_under_rcu\), gave up/);
    }
  });

  it('a fault handled under the per-VMA lock without a retry', () => {
    const trace = recorded(1, 'node-9', [
      '/* mmapkit: mapped 0x7f0000000000 4096 */',
      '/* page_fault_user: address=0x7f0000000000 ip=0x1 error_code=0x4 */',
      'lock_vma_under_rcu 2.000',
      'handle_mm_fault 5.000',
    ].join('\n'));
    const [fault] = analyseTrace(parseFunctionGraph(trace)).faults;
    expect(fault?.locks).toEqual(['lock_vma_under_rcu']);
    expect(lockStory(fault!)).toBe('handled under the per-VMA lock (lock_vma_under_rcu)');
  });

  it('a trace recorded without lock roots says so instead of guessing', () => {
    // The same trace as an older recording, before the lock functions were graph roots: each
    // three-line "lock_mm_and_find_vma() { find_vma(); }" block removed.
    const lines = TRACE_61.split('\n');
    const withoutLocks = lines.filter((_, i) => ![0, 1, 2].some((back) => lines[i - back]?.includes('lock_mm_and_find_vma() {'))).join('\n');
    expect(withoutLocks).not.toContain('lock_mm_and_find_vma');
    const faults = analyseTrace(parseFunctionGraph(withoutLocks)).faults.filter((fault) => fault.inMapping);
    expect(faults.length).toBeGreaterThan(0);
    for (const fault of faults) expect(lockStory(fault)).toBe('no lock function traced');
  });
});

describe('compareKernels', () => {
  const model = compareKernels([side(K61, TRACE_61), side(K612, TRACE_612)]);

  it('finds the lock difference on the fault path', () => {
    const [row] = model.locks;
    expect(row?.label).toBe('fault device');
    expect(row?.perKernel.map((entry) => [entry.kernel, entry.faults, entry.retried, entry.lockFunctions])).toEqual([
      [K61, 2, 0, ['lock_mm_and_find_vma']],
      [K612, 2, 2, ['lock_vma_under_rcu', 'lock_mm_and_find_vma']],
    ]);
    expect(model.summary[0]).toMatch(/^Faults on the fault device lock differently\./);
  });

  it('lists the functions on one kernel\'s mmap and fault paths only', () => {
    const mmap = model.functions.find((row) => row.path === 'mmap() of the fault device')!;
    const only = (kernel: string): string[] => mmap.only.find((entry) => entry.kernel === kernel)!.names;
    expect(only(K61)).toEqual(expect.arrayContaining(['mmap_file', 'vma_mas_store', 'do_mas_munmap']));
    expect(only(K612)).toEqual(expect.arrayContaining(['__mmap_region', 'vma_link_file', 'mm_get_unmapped_area_vmflags']));
    expect(mmap.common).toEqual(expect.arrayContaining(['do_mmap', 'mmap_region', 'mmapkit_mmap_fault', 'vm_area_alloc']));
    expect([...only(K61), ...only(K612), ...mmap.common].some(isNoise)).toBe(false);
    const faults = model.functions.find((row) => row.path === 'faults on the fault device')!;
    expect(faults.only.find((entry) => entry.kernel === K612)!.names).toContain('lock_vma_under_rcu');
    expect(faults.only.find((entry) => entry.kernel === K61)!.names).toEqual([]);
    expect(faults.common).toEqual(expect.arrayContaining(['handle_mm_fault', 'mmapkit_vma_fault', 'vmf_insert_pfn', 'lock_mm_and_find_vma']));
  });

  it('reports identical VmFlags and the same fork outcome as such', () => {
    expect(model.flags[0]).toMatchObject({ label: 'remap device', same: true });
    expect(model.summary.join('\n')).toContain(`VmFlags are identical on every kernel (remap device: ${REMAP_FLAGS})`);
    expect(model.summary.join('\n')).toMatch(/first page .*: 6\.1\.0-56-amd64: fork failed with ENOMEM; 6\.12\.117\+deb12-amd64: fork failed with ENOMEM \(the same on every kernel\)/);
  });

  it('names the letters only one kernel sets, and a fork that differs', () => {
    const other = compareKernels([
      side(K61, TRACE_61),
      side(K612, TRACE_612, {
        vmFlags: [{ label: 'remap device', flags: 'rd wr sh mr mw me ms pf io de dd sd' }],
        forkAfterCow: { ...ENOMEM, firstPage: { ok: true, childSawCopy: true } },
      }),
    ]);
    expect(other.flags[0]?.same).toBe(false);
    expect(other.flags[0]?.only).toEqual([{ kernel: K61, letters: ['ar'] }, { kernel: K612, letters: [] }]);
    expect(other.summary.join('\n')).not.toContain('the same on every kernel');
    expect(other.fork.map((entry) => entry.firstPage)).toEqual(['fork failed with ENOMEM', 'fork succeeded']);
  });

  it('compares timings from the graphs: a 6.12 fault counts its attempt too', () => {
    const fault = model.timings.find((row) => row.what.startsWith('one fault on the fault device'))!;
    expect(fault.perKernel.every((entry) => entry.us !== undefined && entry.us > 0)).toBe(true);
  });

  it('renders text and HTML with both kernels and the raw trace paths', () => {
    const text = renderComparisonText(model);
    expect(text).toMatch(/^Kernel comparison: 6\.1\.0-56-amd64 vs 6\.12\.117\+deb12-amd64/);
    expect(text).toContain('lock functions lock_vma_under_rcu, lock_mm_and_find_vma; retried 2');
    expect(text).toContain(`raw traces of ${K612}: build/trace/x/${K612}/touch-mmapkit-fault.trace`);
    const html = renderComparisonHtml(model, [{ kernel: K61, href: `${K61}/report.html` }]);
    expect(html).toContain('id="comparison"');
    expect(html).toContain(`href="${K61}/report.html"`);
    expect(html).toContain('lock_vma_under_rcu');
  });

  it('with one kernel there is nothing to compare, and it says so', () => {
    const one = compareKernels([side(K61, TRACE_61)]);
    expect(one.summary.at(-1)).toBe('Only one kernel ran: nothing to compare against.');
  });
});

describe('baseName', () => {
  it('drops the compiler\'s clone suffixes', () => {
    expect(baseName('vma_merge.isra.0')).toBe('vma_merge');
    expect(baseName('mmap_region.constprop.0.part.0')).toBe('mmap_region');
    expect(baseName('do_mmap')).toBe('do_mmap');
  });
});
