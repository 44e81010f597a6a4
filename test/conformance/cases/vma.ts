/**
 * Helpers for the cases of files 5-9: what the kernel says about one of the
 * agent's mappings (/proc/PID/maps and smaps, read by the agent itself as
 * /proc/self/*: no `cat` to spawn), error codes, and
 * a python3 program run in the guest for the calls the addon does not offer
 * (pipes, process_vm_readv, ptrace, futex).
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

/**
 * Runs a python3 program in the guest and returns the JSON it prints last.
 * The program starts with helpers: `libc` (ctypes, errno kept), `devmap(path,
 * offset, length, prot, flags, oflags)` returning the address of a fresh
 * mapping of the device in the python process, `errname(errno)`, and `AGENT`,
 * the agent's pid. For a setup's object that another open() of the node does
 * not reach (reach 'fork'), the program is handed the object's fd (as its fd 3)
 * and devmap of the device maps a dup of it: the fd passed, as over a socket.
 * For one that another open does reach (reach 'reopen'), devmap opens the node
 * itself, O_RDWR: a setup object is reached through O_RDWR fds only
 * (needsAccessMode; readDeviceInChild says why).
 */
export async function python<T>(t: ProfileCase, body: string): Promise<T> {
  const program = `${PRELUDE}\n${body}\n`;
  // Forked by the agent's python3 (guest/python-host.ts), as `python3 -I -S -c` would run it:
  // no python3 start, about 1.5 s under TCG, per program.
  const object = t.dut.object;
  const passed = object !== undefined && object.reach === 'fork' && !object.closed;
  const reopened = object !== undefined && object.reach === 'reopen';
  const env = { AGENT: String(t.dut.agentPid), ...(passed && { DEVICE: t.dut.path, DEVICE_FD: '3' }), ...(reopened && { DEVICE: t.dut.path }) };
  const out = await t.dut.guest.python(program, { env, ...(passed && { fd: object.fd }) });
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
    if path == os.environ.get('DEVICE') and 'DEVICE_FD' in os.environ:
        fd = os.dup(int(os.environ['DEVICE_FD']))
    else:
        fd = os.open(path, os.O_RDWR if path == os.environ.get('DEVICE') else oflags)
    addr = libc.mmap(None, length, prot, flags, fd, offset)
    if addr is None or addr == MAP_FAILED:
        raise OSError(ctypes.get_errno(), 'mmap ' + path)
    return addr
def done(value):
    print(json.dumps(value))
`;
