// The VM options every guest command shares (tools/cli/guest-command.ts): bad
// values are one-line usage errors naming the option, before anything boots.
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { MAX_TIMEOUT_S, timeoutSeconds } from '../../tools/cli/guest-command.js';
import { guestCpus } from '../../tools/qemu/session.js';
import { userErrorOf } from './user-error.js';

const usageError = (action: () => unknown): string => userErrorOf(action, ExitCode.USAGE);

describe('timeoutSeconds', () => {
  it('holds at most what a Node timer can wait: 2^31-1 ms', () => {
    expect(MAX_TIMEOUT_S * 1000).toBeLessThanOrEqual(2 ** 31 - 1);
    expect((MAX_TIMEOUT_S + 1) * 1000).toBeGreaterThan(2 ** 31 - 1);
    expect(timeoutSeconds(String(MAX_TIMEOUT_S), '--timeout')).toBe(MAX_TIMEOUT_S);
    expect(timeoutSeconds('0.5', '--boot-timeout')).toBe(0.5);
    expect(timeoutSeconds(undefined, '--timeout')).toBeUndefined();
  });

  it('a timer Node cannot hold fires at once: such a value is refused, naming the option', () => {
    expect(usageError(() => timeoutSeconds('3000000', '--timeout'))).toBe(
      `--timeout takes at most ${MAX_TIMEOUT_S} seconds (about 24 days, the longest timer Node can set), not '3000000'`,
    );
    expect(usageError(() => timeoutSeconds('1e10', '--boot-timeout'))).toMatch(/^--boot-timeout takes at most/);
  });

  it.each(['0', '-1', 'soon', 'Infinity', ''])('refuses %j as a positive number of seconds', (value) => {
    expect(usageError(() => timeoutSeconds(value, '--timeout'))).toMatch(/^--timeout takes a positive number of seconds/);
  });
});

describe('guestCpus (MMAPKIT_GUEST_CPUS)', () => {
  it('is 2 unless asked, else the number asked for', () => {
    expect(guestCpus({})).toBe(2);
    expect(guestCpus({ MMAPKIT_GUEST_CPUS: '' })).toBe(2);
    expect(guestCpus({ MMAPKIT_GUEST_CPUS: '1' })).toBe(1);
    expect(guestCpus({ MMAPKIT_GUEST_CPUS: '8' })).toBe(8);
  });

  it('refuses what is not a whole number from 1 to 8 in one line', () => {
    for (const bad of ['0', '9', '1.5', 'two', '-1']) {
      expect(usageError(() => guestCpus({ MMAPKIT_GUEST_CPUS: bad }))).toBe(`MMAPKIT_GUEST_CPUS=${bad}: takes a whole number from 1 to 8`);
    }
  });
});
