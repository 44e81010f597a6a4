// The guests a conformance run shares out (tools/test/guest-pool.ts): how many, with how many
// vCPUs each, and that a pool whose guest fails to boot leaves no other guest running.
import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import type { GuestRunOptions, SharedGuest } from '../../tools/qemu/guest-run.js';
import { userErrorOf } from './user-error.js';

const shareGuest = vi.hoisted(() => vi.fn<(options: GuestRunOptions, held?: boolean) => Promise<SharedGuest>>());
vi.mock('../../tools/qemu/guest-run.js', () => ({ shareGuest }));
const { poolGuestCpus, sharePool } = await import('../../tools/test/guest-pool.js');
const { TEST_GUESTS_ENV, testGuestCount } = await import('../../tools/test/guest-count.js');

afterEach(() => {
  shareGuest.mockReset();
  vi.restoreAllMocks();
});

describe('testGuestCount', () => {
  it('two for a whole run on a host of two CPUs or more, one on one CPU, one for a quick run', () => {
    vi.spyOn(os, 'availableParallelism').mockReturnValue(2);
    expect(testGuestCount({})).toBe(2);
    expect(testGuestCount({}, true)).toBe(1);
    vi.spyOn(os, 'availableParallelism').mockReturnValue(8);
    expect(testGuestCount({ [TEST_GUESTS_ENV]: '' })).toBe(2);
    vi.spyOn(os, 'availableParallelism').mockReturnValue(1);
    expect(testGuestCount({})).toBe(1);
  });

  it('MMAPKIT_TEST_GUESTS decides, for a quick run too', () => {
    expect(testGuestCount({ [TEST_GUESTS_ENV]: '3' })).toBe(3);
    expect(testGuestCount({ [TEST_GUESTS_ENV]: '2' }, true)).toBe(2);
  });

  it.each(['0', '5', '1.5', 'two'])('refuses MMAPKIT_TEST_GUESTS=%s as a usage error', (value) => {
    expect(userErrorOf(() => testGuestCount({ [TEST_GUESTS_ENV]: value }), ExitCode.USAGE)).toBe(`${TEST_GUESTS_ENV}=${value}: takes a whole number from 1 to 4`);
  });
});

describe('poolGuestCpus', () => {
  it('the first guest keeps the default vCPUs (the races run there), the others get one', () => {
    expect([0, 1, 2].map((index) => poolGuestCpus(index, 3, {}))).toEqual([undefined, 1, 1]);
    expect(poolGuestCpus(0, 1, {})).toBeUndefined();
  });

  it('MMAPKIT_GUEST_CPUS sets every guest\'s', () => {
    expect([0, 1].map((index) => poolGuestCpus(index, 2, { MMAPKIT_GUEST_CPUS: '1' }))).toEqual([undefined, undefined]);
  });
});

function fakeGuest(socket: string): SharedGuest {
  return {
    socket,
    caseTimeoutMs: socket === 'b' ? 9000 : 5000,
    supervisor: { crashes: [], sessions: [], failure: undefined } as unknown as SharedGuest['supervisor'],
    admit: vi.fn(),
    close: vi.fn(() => Promise.resolve({ state: 'completed' as const, reason: 'powered off' })),
  };
}

describe('sharePool', () => {
  const options = { log: () => undefined } as unknown as GuestRunOptions;

  it('boots the guests at once, the first with the default vCPUs, and shares out their sockets', async () => {
    shareGuest.mockImplementation((given) => Promise.resolve(fakeGuest(given.cpus === undefined ? 'a' : 'b')));
    const pool = await sharePool(options, 2, true);
    expect(shareGuest.mock.calls.map(([given, held]) => [given.cpus, held])).toEqual([[undefined, true], [1, true]]);
    expect(pool.sockets).toEqual(['a', 'b']);
    expect(pool.caseTimeoutMs).toBe(9000);
    pool.admit();
    for (const guest of pool.guests) expect(guest.admit).toHaveBeenCalledOnce();
  });

  it('names the first guest that could not go on, if one could not', async () => {
    shareGuest.mockImplementation((given) => Promise.resolve(fakeGuest(given.cpus === undefined ? 'a' : 'b')));
    const pool = await sharePool(options, 2);
    expect(pool.failed).toBeUndefined();
    const failure = { end: { state: 'crashed', reason: 'three crashes' }, session: {} };
    (pool.guests[1]!.supervisor as { failure?: unknown }).failure = failure;
    expect(pool.failed?.socket).toBe('b');
    expect(pool.failed?.supervisor.failure).toBe(failure);
  });

  it('a guest that fails to boot fails the pool, and the guests that came up are stopped', async () => {
    const up = fakeGuest('a');
    shareGuest.mockImplementationOnce(() => Promise.resolve(up)).mockImplementationOnce(() => Promise.reject(new Error('no snapshot')));
    await expect(sharePool(options, 2)).rejects.toThrow('no snapshot');
    expect(up.close).toHaveBeenCalledOnce();
  });
});
