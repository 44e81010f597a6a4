// Module loading in the guest (tools/qemu/guest-modules.ts) against a fake agent: which tool runs
// or which system call is made, with which arguments, and what a refusal reports (the tool's
// output or the kernel's errno, and the kernel's lines).
import { describe, expect, it } from 'vitest';
import type { KmsgCursor, OutputEvent } from '../../guest/protocol.js';
import { type GuestClient, GuestError } from '../../tools/qemu/guest-client.js';
import { attemptLoad, ensureModule, loadModule, moduleName, unloadModule } from '../../tools/qemu/guest-modules.js';

interface FakeAgent {
  guest: GuestClient;
  commands: string[][];
}

/**
 * An agent whose commands exit `code` printing `output`, and whose finit_module(2) and delete_module(2) fail
 * with `errno` when given, each logging `logged` to the kernel log; /sys/module holds `live`. `commands`
 * lists the commands run and the calls made (a system call with the file's path or the module's name).
 */
function fakeAgent(options: { code?: number; output?: string; errno?: string; logged?: string[]; live?: string[] } = {}): FakeAgent {
  const log: string[] = ['[    1.000000] boot line'];
  const commands: string[][] = [];
  const files = new Map<number, string>();
  const guest = {
    ready: Promise.resolve({ constants: { O_RDONLY: 0, O_NONBLOCK: 0o4000 } }),
    native: {
      open: (file: string) => {
        const fd = files.size + 3;
        files.set(fd, file);
        return Promise.resolve(fd);
      },
      finitModule: (fd: number, params: string) => {
        commands.push(['finit_module', files.get(fd)!, params]);
        log.push(...(options.logged ?? []));
        if (options.errno === undefined) return Promise.resolve();
        return Promise.reject(new GuestError({ message: `${options.errno}: Invalid argument, finit_module`, code: options.errno, syscall: 'finit_module' }));
      },
      deleteModule: (name: string, flags: number) => {
        commands.push(['delete_module', name, String(flags)]);
        log.push(...(options.logged ?? []));
        if (options.errno === undefined) return Promise.resolve();
        return Promise.reject(new GuestError({ message: `${options.errno}: Resource temporarily unavailable, delete_module`, code: options.errno, syscall: 'delete_module' }));
      },
      close: (fd: number) => {
        commands.push(['close', files.get(fd)!]);
        return Promise.resolve();
      },
    },
    kernelLog: (since?: KmsgCursor) =>
      Promise.resolve({ cursor: { bootId: 'b', seq: log.length }, lines: since === undefined ? [] : log.slice(since.seq), lost: 0, rebooted: false }),
    exists: (file: string) => {
      commands.push(['exists', file]);
      return Promise.resolve(false);
    },
    exec: (argv: string[], { onOutput }: { onOutput?: (event: OutputEvent) => void } = {}) => {
      commands.push(argv);
      onOutput?.({ id: 1, stream: 'stderr', data: Buffer.from(options.output ?? '') });
      log.push(...(options.logged ?? []));
      return Promise.resolve({ code: options.code ?? 0, signal: null });
    },
    readFile: (file: string) => {
      const name = /^\/sys\/module\/(\w+)\/initstate$/.exec(file)?.[1];
      return name !== undefined && (options.live ?? []).includes(name) ? Promise.resolve('live\n') : Promise.reject(Object.assign(new Error('ENOENT'), { code: 'ENOENT' }));
    },
  } as unknown as GuestClient;
  return { guest, commands };
}

describe('module names', () => {
  it('are the file base name with - read as _, a bare name as is', () => {
    expect(moduleName('/build/kernels/6.1/fixtures/fixture-bug-cow/fixture-bug-cow.ko')).toBe('fixture_bug_cow');
    expect(moduleName('bochs')).toBe('bochs');
  });
});

describe('loading', () => {
  it("loads a .ko by finit_module(2) with insmod's parameter string, a compressed one with insmod, a bare name with modprobe", async () => {
    const agent = fakeAgent();
    await loadModule(agent.guest, '/k/mmapkit.ko', ' size=4096  fault_around=16 ');
    await loadModule(agent.guest, '/k/other.ko.xz', 'a=1');
    await loadModule(agent.guest, 'bochs');
    expect(agent.commands).toEqual([
      ['finit_module', '/k/mmapkit.ko', 'size=4096 fault_around=16'],
      ['close', '/k/mmapkit.ko'],
      ['insmod', '/k/other.ko.xz', 'a=1'],
      ['modprobe', 'bochs'],
    ]);
  });

  it('answers with the kernel log lines logged while the module went in, and only those', async () => {
    const agent = fakeAgent({ logged: ['[    2.000000] mmapkit: 3 devices'] });
    const change = await loadModule(agent.guest, '/k/mmapkit.ko');
    expect(change).toEqual({ argv: ['insmod', '/k/mmapkit.ko'], code: 0, output: '', kernelLog: ['[    2.000000] mmapkit: 3 devices'] });
  });

  it("reports a refused load when attempted, and throws the kernel's errno and lines otherwise; the file is closed either way", async () => {
    const refusal = { errno: 'EINVAL', logged: ['[    2.000000] mmapkit: size=0 is not a page multiple'] };
    const agent = fakeAgent(refusal);
    const attempt = await attemptLoad(agent.guest, '/k/mmapkit.ko', 'size=0');
    const output = 'could not insert module: Invalid parameters (EINVAL: Invalid argument, finit_module)\n';
    expect(attempt).toEqual({ argv: ['insmod', '/k/mmapkit.ko', 'size=0'], code: 1, output, kernelLog: refusal.logged });
    expect(agent.commands.at(-1)).toEqual(['close', '/k/mmapkit.ko']);
    await expect(loadModule(fakeAgent(refusal).guest, '/k/mmapkit.ko', 'size=0')).rejects.toThrow(
      /^insmod \/k\/mmapkit\.ko size=0 failed \(status 1\): could not insert module: Invalid parameters \(EINVAL: .*\)\n.*size=0 is not a page multiple$/,
    );
    const tool = { code: 1, output: 'insmod: ERROR: could not insert module: Invalid parameters\n' };
    await expect(loadModule(fakeAgent(tool).guest, '/k/other.ko.xz')).rejects.toThrow(/^insmod \/k\/other\.ko\.xz failed \(status 1\): insmod: ERROR/);
    await expect(unloadModule(fakeAgent({ errno: 'EAGAIN' }).guest, 'mmapkit')).rejects.toThrow(
      /^rmmod mmapkit failed \(status 1\): could not remove module: Module is in use \(EAGAIN: Resource temporarily unavailable, delete_module\)$/,
    );
  });

  it('unloads by delete_module(2) with O_NONBLOCK, as rmmod does', async () => {
    const agent = fakeAgent({ logged: ['[    3.000000] mmapkit: unloaded'] });
    expect(await unloadModule(agent.guest, 'mmapkit')).toEqual({ argv: ['rmmod', 'mmapkit'], code: 0, output: '', kernelLog: ['[    3.000000] mmapkit: unloaded'] });
    expect(agent.commands).toEqual([['delete_module', 'mmapkit', String(0o4000)]]);
  });

  it('loads only what is not live already', async () => {
    const agent = fakeAgent({ live: ['mmapkit'] });
    await ensureModule(agent.guest, '/k/mmapkit.ko');
    expect(agent.commands).toEqual([]);
    await ensureModule(agent.guest, '/k/fixture-correct.ko', 'size=4096');
    expect(agent.commands).toEqual([
      ['exists', '/sys/module/fixture_correct'],
      ['finit_module', '/k/fixture-correct.ko', 'size=4096'],
      ['close', '/k/fixture-correct.ko'],
    ]);
  });
});
