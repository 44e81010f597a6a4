/**
 * Fork after copy-on-write on a MAP_PRIVATE mapping of a PFN-mapped device
 * (catalogue E3, conformance case "fork after writing the first page
 * of a MAP_PRIVATE mapping"), measured on the running kernel for the kernel
 * comparison of `mmapkit explain --kernels`.
 *
 * The addon's forkAndExit needs the scenario bundle's process; a python3
 * program (the guest has it, the conformance cases use it the same way) does
 * the two forks in a process of its own, so a failing fork leaves nothing
 * behind in the agent. The later-page case runs first and is unmapped before
 * the first-page case: while a mapping whose first page was COW-written
 * exists, every fork of that process fails, which would hide the contrast.
 */
import type { GuestClient } from '../qemu/guest-client.js';
import { lastJson } from '../trace/record.js';

export interface ForkOutcome {
  /** Did fork() succeed? */
  ok: boolean;
  /** errno name when it did not (ENOMEM on x86 PAT kernels). */
  error?: string;
  /** The child read the parent's private copy ("private"), when it ran. */
  childSawCopy?: boolean;
}

export interface ForkAfterCow {
  device: string;
  /** Fork after writing page 1 (not the first) of a two-page MAP_PRIVATE mapping. */
  laterPage: ForkOutcome;
  /** Fork after writing page 0: the case that x86 PAT's track_pfn_copy refuses. */
  firstPage: ForkOutcome;
}

/** python3 -I -S: argv[1] the device; prints one JSON line. */
export const FORK_PROBE_PROGRAM = String.raw`
import errno, json, mmap, os, sys
dev = sys.argv[1]
page = mmap.PAGESIZE
def attempt(index):
    fd = os.open(dev, os.O_RDWR)
    m = mmap.mmap(fd, 2 * page, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    at = index * page
    m[at:at + 7] = b'private'
    try:
        pid = os.fork()
    except OSError as e:
        m.close()
        return {'ok': False, 'error': errno.errorcode.get(e.errno, str(e.errno))}
    if pid == 0:
        os._exit(0 if m[at:at + 7] == b'private' else 1)
    _, status = os.waitpid(pid, 0)
    m.close()
    return {'ok': True, 'childSawCopy': os.waitstatus_to_exitcode(status) == 0}
later = attempt(1)
first = attempt(0)
print(json.dumps({'laterPage': later, 'firstPage': first}))
`;

export async function probeForkAfterCow(guest: GuestClient, device: string): Promise<ForkAfterCow> {
  const stdout = await guest.run(['python3', '-I', '-S', '-c', FORK_PROBE_PROGRAM, device]);
  return { device, ...lastJson<Omit<ForkAfterCow, 'device'>>(stdout) };
}

export const describeFork = (outcome: ForkOutcome): string =>
  outcome.ok ? `fork succeeded${outcome.childSawCopy === false ? ', but the child did not see the private copy' : ''}` : `fork failed with ${outcome.error ?? '?'}`;
