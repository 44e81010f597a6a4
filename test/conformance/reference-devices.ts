/**
 * The reference driver's devices and the choices each one makes where the
 * mmap semantics catalogue lets a driver choose. They all sit over one
 * buffer, so a write through one is visible through the others.
 */

import { REFERENCE_DEVICE_PATHS as PATHS } from '../../tools/reference-driver.js';

export interface ReferenceDevice {
  path: string;
  /** Shared writable mappings of an O_RDWR fd are allowed (catalogue B4). */
  writable: boolean;
  /** When PTEs appear: all at mmap time, or one per first touch through ->fault. */
  population: 'prefault' | 'on-demand';
  /**
   * MAP_PRIVATE with PROT_WRITE (catalogue C1–C4): a copy-on-write mapping,
   * or refused with this errno. 'cow-if-contiguous': the remap devices back a
   * contiguous buffer with one whole-VMA remap_pfn_range (COW works) and a
   * vmalloc buffer page by page (COW refused with EINVAL, mm/memory.c:2512-2514).
   */
  private: 'cow-if-contiguous' | { refused: 'EINVAL' | 'EACCES' };
}

export const REFERENCE_DEVICES: ReferenceDevice[] = [
  { path: PATHS.alias, writable: true, population: 'prefault', private: 'cow-if-contiguous' },
  { path: PATHS.remap, writable: true, population: 'prefault', private: 'cow-if-contiguous' },
  // Fault(pfn) shape: a COW mapping would hit BUG_ON in vmf_insert_pfn (mm/memory.c:2229, C4).
  { path: PATHS.fault, writable: true, population: 'on-demand', private: { refused: 'EINVAL' } },
  // Refuses every VM_WRITE mapping and clears VM_MAYWRITE (B4).
  { path: PATHS.ro, writable: false, population: 'prefault', private: { refused: 'EACCES' } },
];

/** A writable device over the same buffer, for cases that need content a read-only device cannot write. */
export const WRITER_PATH = PATHS.remap;
