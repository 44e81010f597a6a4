// `mmapkit test`'s pre-flight (tools/test/preflight.ts) against a fake agent: each way a target
// fails to come up is one line with its own exit code, and a target that comes up is left open
// for the cases with nothing else done.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KmsgCursor } from '../../guest/protocol.js';
import { ExitCode, UserError } from '../../tools/exit-codes.js';
import type { Profile } from '../../tools/profile.js';
import { GuestError, type GuestClient } from '../../tools/qemu/guest-client.js';
import { bringUp, describeRefusal } from '../../tools/test/preflight.js';

const profile = (overrides: Partial<Profile> = {}): Profile => ({
  name: 'pfnbuf',
  device: '/dev/pfnbuf',
  module: '/root/drivers/pfnbuf.ko',
  moduleParams: '',
  size: 4096,
  offset: 0,
  writable: false,
  initial: 'any',
  population: 'any',
  private: 'any',
  readWrite: false,
  mmio: false,
  interiorOffsets: true,
  protNone: 'mapped',
  knownFindings: [],
  qemuDevices: [],
  console: false,
  file: '/tmp/profiles/pfnbuf.json',
  ...overrides,
});

interface Guest {
  /** The module's load (finit_module): the errno it fails with, if it does, and the kernel lines it causes. */
  load?: { errno?: string; logged: string[] };
  /** Modules in the kernel already. */
  live?: string[];
  /** Device nodes and what opening each does: an fd, or an errno code. */
  devices?: Record<string, number | string>;
  /** What the profile's setup does: the object it makes, or the error it throws. */
  setup?: { fds: number[]; size: bigint } | { message: string; code: string };
}

/** A fake agent; `calls` records every call, in order. The module file opens as fd 20. */
function fakeGuest(setup: Guest): { guest: GuestClient; calls: string[] } {
  const log = ['[    1.000000] boot'];
  const calls: string[] = [];
  const guest = {
    ready: Promise.resolve({ type: 'ready', uptime: 1, kernel: 'test', clocksource: 'tsc', pageSize: 4096, constants: { O_RDONLY: 0, O_RDWR: 2 }, pid: 100 }),
    kernelLog: (since?: KmsgCursor) =>
      Promise.resolve({ cursor: { bootId: 'b', seq: log.length }, lines: since === undefined ? [] : log.slice(since.seq), lost: 0, rebooted: false }),
    readFile: (file: string) => {
      const name = /^\/sys\/module\/(\w+)\/initstate$/.exec(file)?.[1];
      return name !== undefined && (setup.live ?? []).includes(name) ? Promise.resolve('live\n') : Promise.reject(new GuestError({ message: 'ENOENT', code: 'ENOENT' }));
    },
    exists: (file: string) => {
      calls.push(`exists ${file}`);
      return Promise.resolve(false);
    },
    native: {
      finitModule: (fd: number, params: string) => {
        calls.push(`finit_module ${fd} '${params}'`);
        const load = setup.load ?? { logged: [] };
        log.push(...load.logged);
        if (load.errno === undefined) return Promise.resolve();
        return Promise.reject(new GuestError({ message: `${load.errno}: No such file or directory, finit_module`, code: load.errno, syscall: 'finit_module' }));
      },
      open: (device: string, flags: number) => {
        calls.push(`open ${device} ${flags}`);
        const outcome = device.endsWith('.ko') ? 20 : ((setup.devices ?? {})[device] ?? 'ENOENT');
        return typeof outcome === 'number' ? Promise.resolve(outcome) : Promise.reject(new GuestError({ message: `${outcome}: open`, code: outcome }));
      },
      close: (fd: number) => {
        calls.push(`close ${fd}`);
        return Promise.resolve();
      },
    },
    targetOpen: ({ module, device, params }: { module: string; device: string; params: unknown }) => {
      calls.push(`targetOpen ${path.basename(module).replace(/-[0-9a-f]{12}\.mjs$/, '')} ${device} ${JSON.stringify(params)}`);
      const made = setup.setup ?? { message: 'no setup', code: 'EIO' };
      if ('code' in made) return Promise.reject(new GuestError(made));
      return Promise.resolve({ fd: made.fds[0], fds: made.fds, offset: 1n << 32n, size: made.size, reach: 'fork' });
    },
  } as unknown as GuestClient;
  return { guest, calls };
}

/** The error bringUp rejects with. */
async function failure(setup: Guest, target = profile()): Promise<UserError> {
  const error = await bringUp(fakeGuest(setup).guest, [target]).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(UserError);
  return error as UserError;
}

describe('bringUp', () => {
  it('loads the module, opens the device read-only and closes it: nothing else', async () => {
    const { guest, calls } = fakeGuest({ devices: { '/dev/pfnbuf': 7 } });
    await bringUp(guest, [profile()]);
    expect(calls).toEqual(['exists /sys/module/pfnbuf', 'open /root/drivers/pfnbuf.ko 0', "finit_module 20 ''", 'close 20', 'open /dev/pfnbuf 0', 'close 7']);
  });

  it('leaves a module that is in already, and loads nothing for a profile without one', async () => {
    const { guest, calls } = fakeGuest({ live: ['pfnbuf'], devices: { '/dev/pfnbuf': 3, '/dev/fb0': 4 } });
    await bringUp(guest, [profile(), profile({ module: undefined, device: '/dev/fb0' })]);
    expect(calls).toEqual(['open /dev/pfnbuf 0', 'close 3', 'open /dev/fb0 0', 'close 4']);
  });

  it('a module that does not load: exit 3, what the errno means for a load, the errno and the kernel lines it caused, on one line', async () => {
    const error = await failure({ load: { errno: 'ENOENT', logged: ['[   12.345678] pfnbuf: Unknown symbol vmf_insert_pfnx (err -2)'] } });
    expect(error.exitCode).toBe(ExitCode.SETUP);
    expect(error.message).toBe(
      'pfnbuf.json: module /root/drivers/pfnbuf.ko does not load: could not insert module: Unknown symbol in module, or unknown parameter ' +
        '(ENOENT: No such file or directory, finit_module) (kernel: pfnbuf: Unknown symbol vmf_insert_pfnx (err -2))',
    );
    expect(error.message).not.toContain('\n');
  });

  it('a device node missing after the load: exit 2, the profile names a device its driver does not make', async () => {
    const error = await failure({ devices: {} });
    expect(error.exitCode).toBe(ExitCode.USAGE);
    expect(error.message).toBe('pfnbuf.json: device /dev/pfnbuf does not exist after pfnbuf.ko loaded');
  });

  it('a device that does not open: exit 3, with the errno', async () => {
    const error = await failure({ devices: { '/dev/pfnbuf': 'ENXIO' } });
    expect(error.exitCode).toBe(ExitCode.SETUP);
    expect(error.message).toBe('pfnbuf.json: device /dev/pfnbuf cannot be opened: ENXIO');
  });

  it('stops at the first target that does not come up', async () => {
    const { guest, calls } = fakeGuest({ live: ['pfnbuf'], devices: { '/dev/b': 5 } });
    await expect(bringUp(guest, [profile({ device: '/dev/a' }), profile({ device: '/dev/b' })])).rejects.toThrow(/\/dev\/a does not exist/);
    expect(calls).not.toContain('open /dev/b 0');
  });
});

describe('bringUp: a profile with a setup', () => {
  const drm = profile({ module: undefined, device: '/dev/dri/card0', size: 8192, setup: { module: '/p/setups/drm.ts', params: { width: 64 } } });

  it('runs the setup once after the device opens, and closes every fd of its object', async () => {
    const { guest, calls } = fakeGuest({ devices: { '/dev/dri/card0': 4 }, setup: { fds: [5, 6], size: 8192n } });
    await bringUp(guest, [drm]);
    expect(calls).toEqual(['open /dev/dri/card0 0', 'close 4', 'targetOpen drm /dev/dri/card0 {"width":64}', 'close 5', 'close 6']);
  });

  it('a setup that fails: exit 3, the step and its errno', async () => {
    const error = await failure({ devices: { '/dev/dri/card0': 4 }, setup: { message: 'DRM_IOCTL_MODE_CREATE_DUMB 64x64x32: ENOSYS', code: 'ENOSYS' } }, drm);
    expect(error.exitCode).toBe(ExitCode.SETUP);
    expect(error.message).toBe('pfnbuf.json: setup drm.ts fails: DRM_IOCTL_MODE_CREATE_DUMB 64x64x32: ENOSYS');
  });

  it('an object of another size than the profile says: exit 2, a bad profile', async () => {
    const error = await failure({ devices: { '/dev/dri/card0': 4 }, setup: { fds: [5], size: 4096n } }, drm);
    expect(error.exitCode).toBe(ExitCode.USAGE);
    expect(error.message).toBe('pfnbuf.json: "size" is 8192, but setup drm.ts made an object of 4096 bytes');
  });
});

describe('describeRefusal', () => {
  it('says the exit status when the tool printed nothing, and joins several lines', () => {
    expect(describeRefusal({ argv: ['modprobe', 'bochs'], code: 1, output: '', kernelLog: [] })).toBe('modprobe exited with status 1');
    expect(describeRefusal({ argv: ['insmod', 'x.ko'], code: 1, output: 'a\nb\n', kernelLog: ['[    2.000000] one', '[    2.100000] two'] })).toBe(
      'a; b (kernel: one; two)',
    );
  });
});
