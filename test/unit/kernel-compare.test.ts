/**
 * The kernel comparison of `mmapkit explain --kernels` (tools/explain/compare.ts)
 * and the fault-lock attribution it rests on (tools/trace/tree.ts), on trace
 * excerpts recorded by `mmapkit explain --kernels all` (TCG, 2 vCPUs): the
 * mmap() graph and the first two faults on /dev/mmapkit-fault of each kernel,
 * verbatim, with the lock functions traced as graph roots (tools/trace/ftrace.ts).
 */
import { describe, expect, it } from 'vitest';
import { type KernelSide, baseName, compareKernels, isNoise, renderComparisonText } from '../../tools/explain/compare.js';
import type { ForkAfterCow } from '../../tools/explain/fork-probe.js';
import { parseFunctionGraph } from '../../tools/trace/graph.js';
import { renderComparisonHtml } from '../../tools/explain/html.js';
import { analyseTrace, lockStory } from '../../tools/trace/tree.js';

/** 6.1.0-56-amd64 (6.1.192): mmap(), then two faults on the mapping, each lock_mm_and_find_vma then handle_mm_fault. */
const TRACE_61 = ` 0)    node-173    |               |  __x64_sys_mmap() {
 0)    node-173    |               |    ksys_mmap_pgoff() {
 0)    node-173    |               |      vm_mmap_pgoff() {
 0)    node-173    |               |        security_mmap_file() {
 0)    node-173    |   2.670 us    |          cap_mmap_file();
 0)    node-173    |   5.930 us    |          apparmor_mmap_file();
 0)    node-173    |   1.160 us    |          bpf_lsm_mmap_file();
 0)    node-173    |   2.100 us    |          ima_file_mmap();
 0)    node-173    | + 31.060 us   |        }
 0)    node-173    |               |        do_mmap() {
 0)    node-173    |               |          get_unmapped_area() {
 0)    node-173    |               |            arch_get_unmapped_area_topdown() {
 0)    node-173    |   1.740 us    |              get_mmap_base();
 0)    node-173    | + 31.391 us   |              vm_unmapped_area();
 0)    node-173    | + 42.401 us   |            }
 0)    node-173    |               |            security_mmap_addr() {
 0)    node-173    |   1.450 us    |              cap_mmap_addr();
 0)    node-173    |   1.540 us    |              bpf_lsm_mmap_addr();
 0)    node-173    |   7.470 us    |            }
 0)    node-173    | + 57.041 us   |          }
 0)    node-173    |               |          mmap_region() {
 0)    node-173    | + 12.980 us   |            do_mas_munmap();
 0)    node-173    |   1.490 us    |            can_vma_merge_before.isra.0();
 0)    node-173    |   4.320 us    |            vm_area_alloc();
 0)    node-173    |               |            mmap_file() {
 0)    node-173    | + 33.360 us   |              mmapkit_mmap_fault [mmapkit]();
 0)    node-173    | + 40.500 us   |            }
 0)    node-173    |   2.130 us    |            vma_merge();
 0)    node-173    | ! 304.020 us  |            vma_mas_store();
 0)    node-173    |   3.910 us    |            vma_interval_tree_insert();
 0)    node-173    |   1.480 us    |            khugepaged_enter_vma();
 0)    node-173    |   1.940 us    |            perf_event_mmap();
 0)    node-173    |   2.380 us    |            uprobe_mmap();
 0)    node-173    |               |            vma_set_page_prot() {
 0)    node-173    |   3.010 us    |              vma_wants_writenotify();
 0)    node-173    |   7.920 us    |            }
 0)    node-173    | ! 440.540 us  |          }
 0)    node-173    | ! 513.571 us  |        }
 0)    node-173    |   2.680 us    |        userfaultfd_unmap_complete();
 0)    node-173    | ! 558.721 us  |      }
 0)    node-173    | ! 578.671 us  |    }
 0)    node-173    | ! 597.911 us  |  }
 0)    node-173    |               |  /* mmapkit: mapped 0x7fed2c428000 16384 */
 0)    node-173    |               |  /* mmapkit: touch */
 0)    node-173    |               |  /* page_fault_user: address=0x7fed2c428000 ip=0x7fed2c441d9e error_code=0x4 */
 0)    node-173    |               |  lock_mm_and_find_vma() {
 0)    node-173    |   3.310 us    |    find_vma();
 0)    node-173    | + 10.690 us   |  }
 0)    node-173    |               |  handle_mm_fault() {
 0)    node-173    |               |    __handle_mm_fault() {
 0)    node-173    |               |      do_fault() {
 0)    node-173    |               |        __do_fault() {
 0)    node-173    |               |          mmapkit_vma_fault [mmapkit]() {
 0)    node-173    | + 17.410 us   |            mmapkit_buf_pfn [mmapkit]();
 0)    node-173    |               |            vmf_insert_pfn() {
 0)    node-173    |               |              vmf_insert_pfn_prot() {
 0)    node-173    |   1.920 us    |                pfn_modify_allowed();
 0)    node-173    | + 17.910 us   |                track_pfn_insert();
 0)    node-173    |               |                insert_pfn() {
 0)    node-173    |               |                  __get_locked_pte() {
 0)    node-173    |   4.830 us    |                    walk_to_pmd();
 0)    node-173    | + 10.050 us   |                  }
 0)    node-173    | + 15.590 us   |                }
 0)    node-173    | + 43.160 us   |              }
 0)    node-173    | + 45.450 us   |            }
 0)    node-173    |   4.390 us    |            mmapkit_fault_around_pages [mmapkit]();
 0)    node-173    | ! 131.890 us  |          }
 0)    node-173    | ! 138.850 us  |        }
 0)    node-173    | ! 144.620 us  |      }
 0)    node-173    | ! 150.820 us  |    }
 0)    node-173    | ! 154.870 us  |  }
 0)    node-173    |               |  /* page_fault_user: address=0x7fed2c429000 ip=0x7fed2c441d9e error_code=0x4 */
 0)    node-173    |               |  lock_mm_and_find_vma() {
 0)    node-173    |   1.820 us    |    find_vma();
 0)    node-173    |   4.000 us    |  }
 0)    node-173    |               |  handle_mm_fault() {
 0)    node-173    |               |    __handle_mm_fault() {
 0)    node-173    |               |      do_fault() {
 0)    node-173    |               |        __do_fault() {
 0)    node-173    |               |          mmapkit_vma_fault [mmapkit]() {
 0)    node-173    |   1.100 us    |            mmapkit_buf_pfn [mmapkit]();
 0)    node-173    |               |            vmf_insert_pfn() {
 0)    node-173    |               |              vmf_insert_pfn_prot() {
 0)    node-173    |   1.020 us    |                pfn_modify_allowed();
 0)    node-173    |   1.990 us    |                track_pfn_insert();
 0)    node-173    |               |                insert_pfn() {
 0)    node-173    |               |                  __get_locked_pte() {
 0)    node-173    |   0.990 us    |                    walk_to_pmd();
 0)    node-173    |   2.780 us    |                  }
 0)    node-173    |   5.050 us    |                }
 0)    node-173    | + 11.550 us   |              }
 0)    node-173    | + 13.170 us   |            }
 0)    node-173    |   0.930 us    |            mmapkit_fault_around_pages [mmapkit]();
 0)    node-173    | + 19.510 us   |          }
 0)    node-173    | + 21.390 us   |        }
 0)    node-173    | + 23.320 us   |      }
 0)    node-173    | + 26.700 us   |    }
 0)    node-173    | + 29.650 us   |  }`;

/** 6.12.117+deb12-amd64: mmap(), then two faults, each lock_vma_under_rcu + handle_mm_fault (gives up), lock_mm_and_find_vma + handle_mm_fault. */
const TRACE_612 = ` 1)    node-213    |               |  __x64_sys_mmap() {
 1)    node-213    |               |    ksys_mmap_pgoff() {
 1)    node-213    |               |      vm_mmap_pgoff() {
 1)    node-213    |               |        security_mmap_file() {
 1)    node-213    |   1.380 us    |          cap_mmap_file();
 1)    node-213    |   4.050 us    |          apparmor_mmap_file();
 1)    node-213    |   1.040 us    |          bpf_lsm_mmap_file();
 1)    node-213    |   1.991 us    |          ipe_mmap_file();
 1)    node-213    |   3.040 us    |          ima_file_mmap();
 1)    node-213    | + 26.751 us   |        }
 1)    node-213    |               |        do_mmap() {
 1)    node-213    |               |          __get_unmapped_area() {
 1)    node-213    |               |            mm_get_unmapped_area_vmflags() {
 1)    node-213    |               |              arch_get_unmapped_area_topdown() {
 1)    node-213    |   1.660 us    |                get_mmap_base();
 1)    node-213    | + 34.500 us   |                vm_unmapped_area();
 1)    node-213    | + 44.590 us   |              }
 1)    node-213    | + 47.250 us   |            }
 1)    node-213    |               |            security_mmap_addr() {
 1)    node-213    |   1.340 us    |              cap_mmap_addr();
 1)    node-213    |   1.090 us    |              bpf_lsm_mmap_addr();
 1)    node-213    |   7.000 us    |            }
 1)    node-213    | + 59.680 us   |          }
 1)    node-213    |   2.420 us    |          memfd_check_seals_mmap();
 1)    node-213    |               |          mmap_region() {
 1)    node-213    |               |            __mmap_region() {
 1)    node-213    |               |              vma_merge_new_range() {
 1)    node-213    |   2.140 us    |                can_vma_merge_right();
 1)    node-213    |   6.810 us    |              }
 1)    node-213    |   6.291 us    |              vm_area_alloc();
 1)    node-213    | + 49.860 us   |              mmapkit_mmap_fault [mmapkit]();
 1)    node-213    |   1.080 us    |              vma_merge_new_range();
 1)    node-213    | # 2620.031 us |              default_send_IPI_single_phys();
 1)    node-213    |   4.870 us    |              default_send_IPI_single_phys();
 1)    node-213    |               |              vma_link_file() {
 1)    node-213    |   6.600 us    |                vma_interval_tree_insert();
 1)    node-213    | + 89.871 us   |              }
 1)    node-213    |               |              khugepaged_enter_vma() {
 1)    node-213    |   1.830 us    |                hugepage_pmd_enabled();
 1)    node-213    |   3.480 us    |                __thp_vma_allowable_orders();
 1)    node-213    | + 11.020 us   |              }
 1)    node-213    |   1.660 us    |              ksm_add_vma();
 1)    node-213    |   1.950 us    |              perf_event_mmap();
 1)    node-213    |   1.540 us    |              vms_complete_munmap_vmas();
 1)    node-213    |   1.960 us    |              uprobe_mmap();
 1)    node-213    |               |              vma_set_page_prot() {
 1)    node-213    |   2.770 us    |                vma_wants_writenotify();
 1)    node-213    |   7.190 us    |              }
 1)    node-213    | # 3243.816 us |            }
 1)    node-213    | # 3248.626 us |          }
 1)    node-213    | # 3323.176 us |        }
 1)    node-213    |   2.030 us    |        userfaultfd_unmap_complete();
 1)    node-213    | # 3361.567 us |      }
 1)    node-213    | # 3369.148 us |    }
 1)    node-213    | # 3375.158 us |  }
 1)    node-213    |               |  /* mmapkit: mapped 0x7f9cb0755000 16384 */
 1)    node-213    |               |  /* mmapkit: touch */
 1)    node-213    |               |  /* page_fault_user: address=0x7f9cb0755000 ip=0x7f9cb076ed9e error_code=0x4 */
 1)    node-213    |   2.000 us    |  lock_vma_under_rcu();
 1)    node-213    |               |  handle_mm_fault() {
 1)    node-213    |               |    __handle_mm_fault() {
 1)    node-213    |               |      pte_offset_map_nolock() {
 1)    node-213    |   0.850 us    |        __pte_offset_map();
 1)    node-213    |   2.610 us    |      }
 1)    node-213    |   2.920 us    |      do_fault();
 1)    node-213    |   8.940 us    |    }
 1)    node-213    | + 10.970 us   |  }
 1)    node-213    |               |  lock_mm_and_find_vma() {
 1)    node-213    |   9.470 us    |    find_vma();
 1)    node-213    | + 14.030 us   |  }
 1)    node-213    |               |  handle_mm_fault() {
 1)    node-213    |               |    __handle_mm_fault() {
 1)    node-213    |               |      pte_offset_map_nolock() {
 1)    node-213    |   0.810 us    |        __pte_offset_map();
 1)    node-213    |   2.500 us    |      }
 1)    node-213    |               |      do_fault() {
 1)    node-213    |               |        __do_fault() {
 1)    node-213    |               |          mmapkit_vma_fault [mmapkit]() {
 1)    node-213    | + 17.700 us   |            mmapkit_buf_pfn [mmapkit]();
 1)    node-213    |               |            vmf_insert_pfn() {
 1)    node-213    |               |              vmf_insert_pfn_prot() {
 1)    node-213    |   1.200 us    |                pfn_modify_allowed();
 1)    node-213    | + 16.801 us   |                track_pfn_insert();
 1)    node-213    |               |                insert_pfn() {
 1)    node-213    |               |                  __get_locked_pte() {
 1)    node-213    |   3.590 us    |                    walk_to_pmd();
 1)    node-213    |               |                    __pte_offset_map_lock() {
 1)    node-213    |   0.810 us    |                      __pte_offset_map();
 1)    node-213    |   2.660 us    |                    }
 1)    node-213    |   9.870 us    |                  }
 1)    node-213    | + 16.140 us   |                }
 1)    node-213    | + 41.781 us   |              }
 1)    node-213    | + 43.791 us   |            }
 1)    node-213    |   4.010 us    |            mmapkit_fault_around_pages [mmapkit]();
 1)    node-213    | ! 133.591 us  |          }
 1)    node-213    | ! 140.541 us  |        }
 1)    node-213    | ! 143.231 us  |      }
 1)    node-213    | ! 148.701 us  |    }
 1)    node-213    | ! 151.111 us  |  }
 1)    node-213    |               |  /* page_fault_user: address=0x7f9cb0756000 ip=0x7f9cb076ed9e error_code=0x4 */
 1)    node-213    |   1.700 us    |  lock_vma_under_rcu();
 1)    node-213    |               |  handle_mm_fault() {
 1)    node-213    |               |    __handle_mm_fault() {
 1)    node-213    |               |      pte_offset_map_nolock() {
 1)    node-213    |   0.840 us    |        __pte_offset_map();
 1)    node-213    |   3.930 us    |      }
 1)    node-213    |   1.410 us    |      do_fault();
 1)    node-213    |   8.970 us    |    }
 1)    node-213    | + 10.770 us   |  }
 1)    node-213    |               |  lock_mm_and_find_vma() {
 1)    node-213    |   1.450 us    |    find_vma();
 1)    node-213    |   3.470 us    |  }
 1)    node-213    |               |  handle_mm_fault() {
 1)    node-213    |               |    __handle_mm_fault() {
 1)    node-213    |               |      pte_offset_map_nolock() {
 1)    node-213    |   0.810 us    |        __pte_offset_map();
 1)    node-213    |   2.470 us    |      }
 1)    node-213    |               |      do_fault() {
 1)    node-213    |               |        __do_fault() {
 1)    node-213    |               |          mmapkit_vma_fault [mmapkit]() {
 1)    node-213    |   0.820 us    |            mmapkit_buf_pfn [mmapkit]();
 1)    node-213    |               |            vmf_insert_pfn() {
 1)    node-213    |               |              vmf_insert_pfn_prot() {
 1)    node-213    |   0.790 us    |                pfn_modify_allowed();
 1)    node-213    |   2.080 us    |                track_pfn_insert();
 1)    node-213    |               |                insert_pfn() {
 1)    node-213    |               |                  __get_locked_pte() {
 1)    node-213    |   0.940 us    |                    walk_to_pmd();
 1)    node-213    |               |                    __pte_offset_map_lock() {
 1)    node-213    |   0.800 us    |                      __pte_offset_map();
 1)    node-213    |   2.570 us    |                    }
 1)    node-213    |   5.910 us    |                  }
 1)    node-213    |   7.780 us    |                }
 1)    node-213    | + 14.020 us   |              }
 1)    node-213    | + 15.530 us   |            }
 1)    node-213    |   0.830 us    |            mmapkit_fault_around_pages [mmapkit]();
 1)    node-213    | + 20.700 us   |          }
 1)    node-213    | + 22.400 us   |        }
 1)    node-213    | + 24.210 us   |      }
 1)    node-213    | + 29.310 us   |    }
 1)    node-213    | + 31.310 us   |  }`;

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
    const trace = [
      ' 1)    node-9    |               |  /* mmapkit: mapped 0x7f0000000000 4096 */',
      ' 1)    node-9    |               |  /* page_fault_user: address=0x7f0000000000 ip=0x1 error_code=0x4 */',
      ' 1)    node-9    |   2.000 us    |  lock_vma_under_rcu();',
      ' 1)    node-9    |   5.000 us    |  handle_mm_fault();',
    ].join('\n');
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
