/**
 * Helpers for the cases of files 5-9: what the kernel says about one of the
 * agent's mappings (/proc/PID/maps and smaps, read by the agent itself as
 * /proc/self/*: no `cat` to spawn), error codes, and
 * a python3 program run in the guest for the calls the addon does not offer
 * (pipes, process_vm_readv, ptrace, futex).
 */
import type { ProfileCase } from '../profile-suite.js';

/** One vma as /proc/PID/smaps shows it (fs/proc/task_mmu.c:266-300, 654-704). */
export interface VmaInfo {
  /** The maps line: "start-end perms offset dev inode path". */
  line: string;
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  /** "major:minor" as maps prints it (two hex digits each at least). */
  dev: string;
  inode: string;
  flags: Set<string>;
  /** Rss and Locked in kB. */
  rss: number;
  locked: number;
}

/** The vma of the agent that starts at `addr`; throws if there is none. */
export async function vmaAt(t: ProfileCase, addr: bigint): Promise<VmaInfo> {
  const text = await t.dut.guest.readFile('/proc/self/smaps');
  const lines = text.split('\n');
  const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) (\S+) (\d+)/;
  for (let i = 0; i < lines.length; i++) {
    const match = header.exec(lines[i]!);
    if (match === null || BigInt(`0x${match[1]}`) !== addr) continue;
    const info: VmaInfo = {
      line: lines[i]!,
      start: BigInt(`0x${match[1]}`),
      end: BigInt(`0x${match[2]}`),
      perms: match[3]!,
      offset: BigInt(`0x${match[4]}`),
      dev: match[5]!,
      inode: match[6]!,
      flags: new Set(),
      rss: -1,
      locked: -1,
    };
    for (let j = i + 1; j < lines.length && !header.test(lines[j]!); j++) {
      const field = /^(\w+):\s+(.*)$/.exec(lines[j]!);
      if (field === null) continue;
      if (field[1] === 'VmFlags') info.flags = new Set(field[2]!.trim().split(/\s+/));
      if (field[1] === 'Rss') info.rss = Number.parseInt(field[2]!, 10);
      if (field[1] === 'Locked') info.locked = Number.parseInt(field[2]!, 10);
    }
    return info;
  }
  throw new Error(`no vma starts at 0x${addr.toString(16)} in the agent's /proc/PID/smaps`);
}

/** How many vmas of the agent map `path` (its maps lines ending in the path). */
export async function vmaCount(t: ProfileCase, path: string): Promise<number> {
  const text = await t.dut.guest.readFile('/proc/self/maps');
  return text.split('\n').filter((line) => line.endsWith(` ${path}`)).length;
}

/** The vma is VM_PFNMAP ("pf"): page walks skip it (mm/pagewalk.c:353-358). */
export const isPfnmap = (vma: VmaInfo): boolean => vma.flags.has('pf');
/** GUP refuses the vma: VM_IO or VM_PFNMAP (mm/gup.c:1069-1070). */
export const gupRefuses = (vma: VmaInfo): boolean => vma.flags.has('io') || vma.flags.has('pf');
/** VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP (include/linux/mm.h:422). */
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

/**
 * Runs a python3 program in the guest and returns the JSON it prints last.
 * The program starts with helpers: `libc` (ctypes, errno kept), `devmap(path,
 * offset, length, prot, flags, oflags)` returning the address of a fresh
 * mapping of the device in the python process, `errname(errno)`, and `AGENT`,
 * the agent's pid.
 */
export async function python<T>(t: ProfileCase, body: string): Promise<T> {
  const program = `${PRELUDE}\n${body}\n`;
  // Started by the agent itself (no shell in between). -I -S: no site module, user site or
  // PYTHON* variables, which the program (standard library only) does not need and which cost
  // file lookups over the guest's 9p root at every start.
  const agent = (await t.dut.guest.readFile('/proc/self/stat')).split(' ')[0]!;
  const out = await t.dut.guest.run(['python3', '-I', '-S', '-c', program], { env: { AGENT: agent } });
  const last = out.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as T;
}

const PRELUDE = `
import ctypes, errno, json, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.syscall.restype = ctypes.c_long
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
AGENT = int(os.environ['AGENT'])
MAP_FAILED = ctypes.c_void_p(-1).value
def errname(n):
    return errno.errorcode.get(n, str(n))
def devmap(path, offset, length, prot=1, flags=1, oflags=os.O_RDONLY):
    fd = os.open(path, oflags)
    addr = libc.mmap(None, length, prot, flags, fd, offset)
    if addr is None or addr == MAP_FAILED:
        raise OSError(ctypes.get_errno(), 'mmap ' + path)
    return addr
def done(value):
    print(json.dumps(value))
`;
