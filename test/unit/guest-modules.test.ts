// Module loading in the guest (tools/qemu/guest-modules.ts) against a fake agent: which tool runs
// with which arguments, and what a refusal reports (the tool's output and the kernel's lines).
import { describe, expect, it } from 'vitest';
import type { KmsgCursor, OutputEvent } from '../../guest/protocol.js';
import type { GuestClient } from '../../tools/qemu/guest-client.js';
import { attemptLoad, ensureModule, loadModule, moduleName, unloadModule } from '../../tools/qemu/guest-modules.js';

interface FakeAgent {
  guest: GuestClient;
  commands: string[][];
}

/** An agent whose commands exit `code` printing `output`, each logging `logged` to the kernel log; /sys/module holds `live`. */
function fakeAgent(options: { code?: number; output?: string; logged?: string[]; live?: string[] } = {}): FakeAgent {
  const log: string[] = ['[    1.000000] boot line'];
  const commands: string[][] = [];
  const guest = {
    kernelLog: (since?: KmsgCursor) =>
      Promise.resolve({ cursor: { bootId: 'b', seq: log.length }, lines: since === undefined ? [] : log.slice(since.seq), lost: 0, rebooted: false }),
    exec: (argv: string[], { onOutput }: { onOutput?: (event: OutputEvent) => void } = {}) => {
      commands.push(argv);
      if (argv[0] === 'test') return Promise.resolve({ code: 1, signal: null });
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
  it('uses insmod for a .ko and modprobe for a bare name, the parameters as separate words', async () => {
    const agent = fakeAgent();
    await loadModule(agent.guest, '/k/mmapkit.ko', ' size=4096  fault_around=16 ');
    await loadModule(agent.guest, 'bochs');
    expect(agent.commands).toEqual([['insmod', '/k/mmapkit.ko', 'size=4096', 'fault_around=16'], ['modprobe', 'bochs']]);
  });

  it('answers with the kernel log lines logged while the tool ran, and only those', async () => {
    const agent = fakeAgent({ logged: ['[    2.000000] mmapkit: 3 devices'] });
    const change = await loadModule(agent.guest, '/k/mmapkit.ko');
    expect(change).toEqual({ argv: ['insmod', '/k/mmapkit.ko'], code: 0, output: '', kernelLog: ['[    2.000000] mmapkit: 3 devices'] });
  });

  it('reports a refused load when attempted, and throws what the tool and the kernel said otherwise', async () => {
    const refusal = { code: 1, output: 'insmod: ERROR: could not insert module: Invalid parameters\n', logged: ['[    2.000000] mmapkit: size=0 is not a page multiple'] };
    const attempt = await attemptLoad(fakeAgent(refusal).guest, '/k/mmapkit.ko', 'size=0');
    expect([attempt.code, attempt.kernelLog]).toEqual([1, refusal.logged]);
    await expect(loadModule(fakeAgent(refusal).guest, '/k/mmapkit.ko', 'size=0')).rejects.toThrow(
      /^insmod \/k\/mmapkit\.ko size=0 failed \(status 1\): insmod: ERROR: .*Invalid parameters\n.*size=0 is not a page multiple$/,
    );
    await expect(unloadModule(fakeAgent({ code: 1, output: 'rmmod: ERROR: Module mmapkit is in use' }).guest, 'mmapkit')).rejects.toThrow(/^rmmod mmapkit failed/);
  });

  it('loads only what is not live already', async () => {
    const agent = fakeAgent({ live: ['mmapkit'] });
    await ensureModule(agent.guest, '/k/mmapkit.ko');
    expect(agent.commands).toEqual([]);
    await ensureModule(agent.guest, '/k/fixture-correct.ko', 'size=4096');
    expect(agent.commands).toEqual([['test', '-d', '/sys/module/fixture_correct'], ['insmod', '/k/fixture-correct.ko', 'size=4096']]);
  });
});
