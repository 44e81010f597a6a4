/**
 * Indirect access: the mapping as a syscall buffer, GUP, /proc/PID/mem and
 * ptrace (catalogue I1-I4).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 * A write() from the mapping is the addon's pipeThrough, in the agent. The
 * addon offers none of the other calls, so those cases run a small python3
 * program in the guest (vma.ts, python()): it maps the device itself, or
 * works on the agent's mapping through the agent's pid.
 */
import { expect, it } from 'vitest';
import { describeProfiles, ranBranch } from '../profile-suite.js';
import { gupRefuses, python, vmaAt } from './vma.js';

describeProfiles('indirect access: syscalls, GUP, /proc/PID/mem, ptrace (I)', (t) => {
  const page = (): bigint => t.dut.page;

  /** Puts `text` at byte `at` of the region when the profile offers a writer; returns the bytes there. */
  const content = async (at: bigint, text: string): Promise<Buffer> => {
    const writer = t.writer;
    if (writer !== undefined) {
      const { addr } = await t.mappings.map(writer, { length: page() });
      // Cleared after the case, as needsWriter would; the writer maps the whole region here.
      t.mappings.later(() => t.dut.native.writeBytes(addr + at, Buffer.alloc(text.length)));
      await t.dut.native.writeBytes(addr + at, Buffer.from(text));
    }
    return t.mappings.readInChild(t.profile.device, t.dut.offset, Number(at) + text.length).then((bytes) => bytes.subarray(Number(at)));
  };

  // catalogue I4: copy_from_user walks the page tables, no GUP: write(pipe, mapping, n) works even on
  // VM_IO|VM_PFNMAP.
  it('write() from the mapping into a pipe passes the mapped bytes', { tags: ['core'] }, async (ctx) => {
    t.needsStableContent(ctx);
    // content() read the page in a child first: a fault handler that never installs it fails there,
    // before the agent's own write() could retry the fault in the kernel for ever.
    const expected = await content(40n, 'written to a pipe');
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    expect(await t.dut.native.pipeThrough(addr + 40n, expected.length)).toEqual(expected);
  });

  // catalogue I4: copy_to_user into the mapping: read(pipe, mapping, n) lands in the device.
  it('read() from a pipe into a writable mapping reaches the device', async (ctx) => {
    const writer = t.needsWriter(ctx);
    const out = await python<{ n: number }>(
      t,
      `
addr = devmap(${JSON.stringify(writer)}, ${t.dut.offset}, ${page()}, prot=3, oflags=os.O_RDWR)
r, w = os.pipe()
os.write(w, b'read into the map')
done({'n': os.readv(r, [(ctypes.c_char * 17).from_address(addr + 200)])})
`,
    );
    expect(out.n).toBe(17);
    const seen = await t.mappings.readInChild(t.profile.device, t.dut.offset, 217);
    expect(seen.subarray(200).toString()).toBe('read into the map');
  });

  // catalogue I1: process_vm_readv pins the remote pages with GUP, which refuses VM_IO|VM_PFNMAP
  // (check_vma_flags, 6.1 and 6.12) -> EFAULT (process_vm_rw_single_vec, 6.1).
  // Page-backed vmas (catalogue I3) give the bytes.
  it('process_vm_readv from the mapping: EFAULT on VM_IO/VM_PFNMAP, otherwise the mapped bytes', async (ctx) => {
    const expected = await content(8n, 'remote read');
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, addr);
    const out = await python<{ n: number; err: string | null; data: string }>(
      t,
      `
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
libc.process_vm_readv.restype = ctypes.c_ssize_t
buf = ctypes.create_string_buffer(11)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 11)
remote = iovec(${addr + 8n}, 11)
n = libc.process_vm_readv(AGENT, ctypes.byref(local), ctypes.c_ulong(1), ctypes.byref(remote), ctypes.c_ulong(1), ctypes.c_ulong(0))
done({'n': n, 'err': errname(ctypes.get_errno()) if n < 0 else None, 'data': buf.raw.hex()})
`,
    );
    if (gupRefuses(vma)) {
      expect(out.err, `${vma.line}`).toBe('EFAULT');
    } else {
      expect(out.n).toBe(11);
      t.needsStableContent(ctx);
      expect(Buffer.from(out.data, 'hex')).toEqual(expected);
    }
  });

  // catalogue I2: /proc/PID/mem uses GUP, then vm_ops->access (__access_remote_vm); without ->access
  // it is EIO (mem_rw; both 6.1 and 6.12). A missing ->access is a quality warning (taxonomy #17),
  // not a failure; bytes that do come back must be the mapped bytes.
  it('/proc/PID/mem read at the mapping: the mapped bytes, or EIO without vm_ops->access (warning)', async (ctx) => {
    const expected = await content(24n, 'through proc mem');
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, addr);
    const out = await python<{ err: string | null; data: string }>(
      t,
      `
fd = os.open('/proc/%d/mem' % AGENT, os.O_RDONLY)
try:
    done({'err': None, 'data': os.pread(fd, 16, ${addr + 24n}).hex()})
except OSError as e:
    done({'err': errname(e.errno), 'data': ''})
`,
    );
    if (out.err === null) {
      t.needsStableContent(ctx);
      expect(Buffer.from(out.data, 'hex')).toEqual(expected);
      await ranBranch(ctx, 'read the mapped bytes');
    } else {
      expect(gupRefuses(vma), `${vma.line}: GUP works on this vma, so /proc/PID/mem must read it`).toBe(true);
      expect(out.err).toBe('EIO');
      await ctx.annotate('quality warning: no vm_ops->access, /proc/PID/mem gives EIO (catalogue I2, taxonomy #17)');
      await ranBranch(ctx, 'EIO (no vm_ops->access)');
    }
  });

  // catalogue I2: PTRACE_PEEKDATA goes the same way (access_process_vm), EIO without ->access
  // (generic_ptrace_peekdata, 6.1 and 6.12). The tracee is a forked child of the python process,
  // which inherits its MAP_SHARED mapping (catalogue E2).
  it('ptrace PEEKDATA at the mapping: the mapped word, or EIO without vm_ops->access (warning)', async (ctx) => {
    const expected = await content(48n, 'peekdat!');
    const probe = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, probe.addr);
    const out = await python<{ err: string | null; data: string }>(
      t,
      `
addr = devmap(${JSON.stringify(t.profile.device)}, ${t.dut.offset}, ${page()})
pid = os.fork()
if pid == 0:
    libc.ptrace(0, 0, None, None)
    os.kill(os.getpid(), signal.SIGSTOP)
    os._exit(0)
os.waitpid(pid, os.WUNTRACED)
ctypes.set_errno(0)
word = libc.ptrace(2, pid, ctypes.c_void_p(addr + 48), None)
err = ctypes.get_errno()
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
if err != 0:
    done({'err': errname(err), 'data': ''})
else:
    done({'err': None, 'data': (word & 0xffffffffffffffff).to_bytes(8, 'little').hex()})
`,
    );
    if (out.err === null) {
      t.needsStableContent(ctx);
      expect(Buffer.from(out.data, 'hex')).toEqual(expected);
      await ranBranch(ctx, 'read the mapped word');
    } else {
      expect(gupRefuses(vma), `${vma.line}: GUP works on this vma, so PEEKDATA must read it`).toBe(true);
      expect(out.err).toBe('EIO');
      await ctx.annotate('quality warning: no vm_ops->access, PTRACE_PEEKDATA gives EIO (catalogue I2, taxonomy #17)');
      await ranBranch(ctx, 'EIO (no vm_ops->access)');
    }
  });

  // catalogue I1: a shared FUTEX_WAIT resolves its key with GUP (get_futex_key, 6.1 and 6.12): EFAULT on
  // VM_IO|VM_PFNMAP. Elsewhere the key may resolve (then EAGAIN: the value does not match) or
  // not (EFAULT: a driver page has no page->mapping); it never blocks.
  it('a shared FUTEX_WAIT on the mapping: EFAULT on VM_IO/VM_PFNMAP, never a wait', async () => {
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, addr);
    const out = await python<{ err: string }>(
      t,
      `
addr = devmap(${JSON.stringify(t.profile.device)}, ${t.dut.offset}, ${page()})
value = ctypes.c_uint32.from_address(addr).value
class timespec(ctypes.Structure):
    _fields_ = [('sec', ctypes.c_long), ('nsec', ctypes.c_long)]
timeout = timespec(0, 200000000)
r = libc.syscall(ctypes.c_long(202), ctypes.c_void_p(addr), ctypes.c_int(0), ctypes.c_uint32(value ^ 1), ctypes.byref(timeout), None, ctypes.c_int(0))
done({'err': errname(ctypes.get_errno()) if r < 0 else 'ok'})
`,
    );
    if (gupRefuses(vma)) expect(out.err, vma.line).toBe('EFAULT');
    else expect(['EFAULT', 'EAGAIN']).toContain(out.err);
  });
});
