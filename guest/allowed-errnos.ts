/**
 * The errnos a driver may answer with where the mmap semantics catalogue lets
 * it choose, in one place: the conformance cases (test/conformance/
 * profile-suite.ts) and the model of `mmapkit fuzz` (guest/fuzz-model.ts)
 * allow the same sets.
 */

/**
 * Errnos a driver may refuse a mapping with in ->mmap (catalogue A6, B5, C1: EINVAL, EAGAIN, EPERM, EACCES;
 * POSIX ENXIO). The driver chooses: mmap_file() returns ->mmap's error as it is (6.1 and 6.12).
 */
export const REFUSALS = ['EINVAL', 'EAGAIN', 'EPERM', 'EACCES', 'ENXIO'];

/**
 * Errnos a driver refuses VM_WRITE with on a device that is never writable: EACCES, as the core
 * itself refuses a shared writable map of an O_RDONLY fd (catalogue B2; mmapkit-ro), or EPERM (usbmon's mon_bin_mmap).
 */
export const WRITE_REFUSALS = ['EACCES', 'EPERM'];

/**
 * Errnos a driver vetoes moving or splitting its mapping with: move_vma() returns what
 * vm_ops->may_split or ->mremap returned (6.1 and 6.12). In tree:
 * uacce's ->mremap EPERM, resctrl pseudo-lock's ->mremap EINVAL, privcmd's and device-dax's ->may_split EINVAL.
 */
export const MOVE_VETOES = ['EINVAL', 'EPERM'];
