/**
 * Helpers for the cases of files 5-9: what the kernel says about one of the
 * agent's mappings (/proc/PID/maps and smaps, read by the agent itself as
 * /proc/self/*: no `cat` to spawn) and error codes.
 */
import { type SmapsEntry, parseMaps, parseSmaps, vmaStartingAt } from '../../../guest/procfs.js';
import type { ProfileCase } from '../profile-suite.js';

/** One vma of the agent as its /proc/PID/smaps shows it (show_map_vma, 6.1 and 6.12; show_smap_vma_flags, 6.1). */
export type VmaInfo = SmapsEntry;

/** The vma of the agent that starts at `addr`; throws if there is none. */
export async function vmaAt(t: ProfileCase, addr: bigint): Promise<VmaInfo> {
  const vma = vmaStartingAt(parseSmaps(await t.dut.guest.readFile('/proc/self/smaps')), addr);
  if (vma === undefined) throw new Error(`no vma starts at 0x${addr.toString(16)} in the agent's /proc/PID/smaps`);
  return vma;
}

/** How many vmas of the agent map `path`. */
export async function vmaCount(t: ProfileCase, path: string): Promise<number> {
  return parseMaps(await t.dut.guest.readFile('/proc/self/maps')).filter((vma) => vma.path === path).length;
}

/** The vma is VM_PFNMAP ("pf"): page walks skip it (walk_page_test, 6.1 and 6.12). */
export const isPfnmap = (vma: VmaInfo): boolean => vma.flags.has('pf');
/** GUP refuses the vma: VM_IO or VM_PFNMAP (check_vma_flags, 6.1 and 6.12). */
export const gupRefuses = (vma: VmaInfo): boolean => vma.flags.has('io') || vma.flags.has('pf');
/** VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP (include/linux/mm.h, 6.1 and 6.12). */
export const isSpecial = (vma: VmaInfo): boolean => ['io', 'de', 'pf', 'mm'].some((flag) => vma.flags.has(flag));

/** mremap may neither grow nor duplicate (EFAULT) nor MREMAP_DONTUNMAP (EINVAL) this vma: vma_to_resize(), mm/mremap.c, 6.1 and 6.12. */
export const cannotExpand = (vma: VmaInfo): boolean => vma.flags.has('de') || vma.flags.has('pf');

/** What a call gave: its value, or the errno (or signal) name it failed with; any other error is thrown. */
export type Settled<T> = { value: T } | { code: string };

export async function settle<T>(attempt: Promise<T>): Promise<Settled<T>> {
  try {
    return { value: await attempt };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') return { code };
    throw error;
  }
}

/** The errno name of an addon error, or 'ok' when `attempt` did not throw. */
export async function outcome(attempt: Promise<unknown>): Promise<string> {
  const settled = await settle(attempt);
  return 'code' in settled ? settled.code : 'ok';
}
