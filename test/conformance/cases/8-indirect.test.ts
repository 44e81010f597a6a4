/**
 * Indirect access: the mapping as a syscall buffer, GUP, /proc/PID/mem and
 * ptrace (catalogue I1-I4).
 * Each case names its row of the catalogue (docs/catalogue.md) and the kernel
 * functions behind it, with the kernel series they were read in.
 * A write() from the mapping, a read() into it and a futex wait on it are the
 * addon's pipeThrough, pipeInto and futexWait, in the agent. process_vm_readv,
 * /proc/PID/mem and ptrace reach the agent's mapping from another process, as
 * a debugger would: a forked child of the agent (readAsOtherProcess,
 * peekData), where a fault that GUP retries for ever ends with the child's
 * watchdog instead of holding the agent.
 */
import { expect, it } from 'vitest';
import { describeProfiles, ranBranch } from '../profile-suite.js';
import { gupRefuses, outcome, settle, vmaAt } from './vma.js';

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
    const text = Buffer.from('read into the map');
    // A second process writes there first: a fault handler that never installs the page fails there,
    // under its watchdog, before the agent's own read() could retry the fault in the kernel for ever.
    await t.mappings.writeInChild(writer, t.dut.offset, Buffer.alloc(200 + text.length));
    const { addr } = await t.mappings.map(writer, { length: page() });
    expect(await t.dut.native.pipeInto(addr + 200n, text)).toBe(text.length);
    const seen = await t.mappings.readInChild(t.profile.device, t.dut.offset, 200 + text.length);
    expect(seen.subarray(200).toString()).toBe(text.toString());
  });

  // catalogue I1: process_vm_readv pins the remote pages with GUP, which refuses VM_IO|VM_PFNMAP
  // (check_vma_flags, 6.1 and 6.12) -> EFAULT (process_vm_rw_single_vec, 6.1).
  // Page-backed vmas (catalogue I3) give the bytes.
  it('process_vm_readv from the mapping: EFAULT on VM_IO/VM_PFNMAP, otherwise the mapped bytes', async (ctx) => {
    const expected = await content(8n, 'remote read');
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, addr);
    const read = await settle(t.dut.native.readAsOtherProcess('process_vm_readv', addr + 8n, expected.length));
    if (gupRefuses(vma)) {
      expect('code' in read ? read.code : 'the bytes', `${vma.line}`).toBe('EFAULT');
    } else {
      expect(read, `${vma.line}: GUP works on this vma`).toHaveProperty('value');
      t.needsStableContent(ctx);
      expect('value' in read && read.value).toEqual(expected);
    }
  });

  // catalogue I2: /proc/PID/mem uses GUP, then vm_ops->access (__access_remote_vm); without ->access
  // it is EIO (mem_rw; both 6.1 and 6.12). A missing ->access is a quality warning (taxonomy #17),
  // not a failure; bytes that do come back must be the mapped bytes.
  it('/proc/PID/mem read at the mapping: the mapped bytes, or EIO without vm_ops->access (warning)', async (ctx) => {
    const expected = await content(24n, 'through proc mem');
    const { addr } = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, addr);
    const read = await settle(t.dut.native.readAsOtherProcess('proc-mem', addr + 24n, expected.length));
    if ('value' in read) {
      t.needsStableContent(ctx);
      expect(read.value).toEqual(expected);
      await ranBranch(ctx, 'read the mapped bytes');
    } else {
      expect(gupRefuses(vma), `${vma.line}: GUP works on this vma, so /proc/PID/mem must read it`).toBe(true);
      expect(read.code).toBe('EIO');
      await ctx.annotate('quality warning: no vm_ops->access, /proc/PID/mem gives EIO (catalogue I2, taxonomy #17)');
      await ranBranch(ctx, 'EIO (no vm_ops->access)');
    }
  });

  // catalogue I2: PTRACE_PEEKDATA goes the same way (access_process_vm), EIO without ->access
  // (generic_ptrace_peekdata, 6.1 and 6.12). The tracer is a forked child of the agent that seizes
  // the agent's thread: the mapping peeked at is the one vmaAt looked at.
  it('ptrace PEEKDATA at the mapping: the mapped word, or EIO without vm_ops->access (warning)', async (ctx) => {
    const expected = await content(48n, 'peekdat!');
    const probe = await t.mappings.map(t.profile.device, { length: page(), prot: t.dut.c.PROT_READ, openFlags: t.dut.c.O_RDONLY });
    const vma = await vmaAt(t, probe.addr);
    const peeked = await settle(t.dut.native.peekData(probe.addr + 48n));
    if ('value' in peeked) {
      t.needsStableContent(ctx);
      expect(peeked.value).toEqual(expected);
      await ranBranch(ctx, 'read the mapped word');
    } else {
      expect(gupRefuses(vma), `${vma.line}: GUP works on this vma, so PEEKDATA must read it`).toBe(true);
      expect(peeked.code).toBe('EIO');
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
    // Read first, as a program reads the word it waits on: the fault is the addon's guarded access (a
    // handler that never installs the page fails it), and GUP then finds the page table entry in place.
    const word = (await t.dut.native.readBytes(addr, 4)).readUInt32LE(0);
    const waited = await outcome(t.dut.native.futexWait(addr, (word ^ 1) | 0, 200));
    if (gupRefuses(vma)) expect(waited, vma.line).toBe('EFAULT');
    else expect(['EFAULT', 'EAGAIN']).toContain(waited);
  });
});
