/**
 * Crash survival without a VM: the supervisor replaces a guest that died and
 * gives up after too many, and the relay reports the request the guest died
 * under as CRASHED and refuses stale connections until they reattach.
 * Sessions here are fakes with the few members the two use.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GuestClient, GuestGoneError } from '../../tools/qemu/guest-client.js';
import { GuestSupervisor } from '../../tools/qemu/guest-supervisor.js';
import type { SessionEnd } from '../../tools/qemu/outcome.js';
import { CRASHED_CODE, CRASHED_MARK, GONE_CODE, REBOOTED_CODE, startRelay } from '../../tools/qemu/relay.js';
import type { VmSession } from '../../tools/qemu/session.js';

interface FakeSession {
  session: VmSession;
  /** Ends the session as a crash would: pending requests fail, then `ended` resolves. */
  crash(reason?: string): void;
  /** The request to answer next: resolves with the value, or hangs until crash(). */
  answer: unknown;
}

let booted = 0;

function fakeSession(): FakeSession {
  const number = ++booted;
  let end!: (value: SessionEnd) => void;
  const ended = new Promise<SessionEnd>((resolve) => (end = resolve));
  const hanging: ((error: Error) => void)[] = [];
  const fake: FakeSession = {
    answer: `answer from guest ${number}`,
    crash(reason = 'guest kernel crashed: BUG: unable to handle page fault') {
      for (const fail of hanging) fail(new GuestGoneError(reason));
      end({ state: 'guest-crashed', reason });
    },
    session: undefined as unknown as VmSession,
  };
  fake.session = {
    ended,
    ready: { type: 'ready', uptime: 1, kernel: `fake-${number}`, clocksource: 'tsc', pageSize: 4096, constants: { PROT_READ: 1 }, pid: 100 + number },
    consoleLog: `/runs/${number}/console.log`,
    lines: () => ['[    1.0] BUG: unable to handle page fault for address: ffffffffc020f140', '[    1.1] Kernel panic - not syncing: Fatal exception'],
    findings: () => [],
    stop: () => {
      end({ state: 'completed', reason: 'the guest shut down cleanly' });
      return ended;
    },
    guest: {
      request: () =>
        fake.answer === 'hang' ? new Promise((_resolve, reject) => hanging.push(reject)) : Promise.resolve(fake.answer),
    },
  } as unknown as VmSession;
  return fake;
}

const sessions: FakeSession[] = [];
const bootFake = (): Promise<VmSession> => {
  const fake = fakeSession();
  sessions.push(fake);
  return Promise.resolve(fake.session);
};
const quiet = (): undefined => undefined;
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

afterEach(() => {
  sessions.length = 0;
  booted = 0;
});

describe('GuestSupervisor', () => {
  it('replaces a crashed guest, records the crash with its console lines, and bumps the generation', async () => {
    const supervisor = await GuestSupervisor.start(bootFake, quiet);
    expect(await supervisor.session()).toBe(sessions[0]!.session);
    sessions[0]!.crash();
    await settle();
    expect(supervisor.generation).toBe(1);
    expect(supervisor.crashes).toHaveLength(1);
    expect(supervisor.crashes[0]).toMatchObject({ state: 'guest-crashed', consoleLog: '/runs/1/console.log' });
    expect(supervisor.crashes[0]!.excerpt.join('\n')).toMatch(/BUG: unable to handle page fault/);
    expect(await supervisor.session()).toBe(sessions[1]!.session);
    expect((await supervisor.stop()).state).toBe('completed');
  });

  it('stops replacing after three crashes: no guest is left and the failure says why', async () => {
    const supervisor = await GuestSupervisor.start(bootFake, quiet);
    for (let i = 0; i < 3; i++) {
      sessions[i]!.crash(`crash ${i + 1}`);
      await settle();
    }
    expect(sessions).toHaveLength(3);
    expect(supervisor.failure?.end.reason).toBe('crash 3');
    await expect(supervisor.session()).rejects.toThrow('crash 3');
    expect((await supervisor.stop()).reason).toBe('crash 3');
  });

  it('does not count a clean stop as a crash', async () => {
    const supervisor = await GuestSupervisor.start(bootFake, quiet);
    await supervisor.stop();
    await settle();
    expect(supervisor.crashes).toEqual([]);
    expect(sessions).toHaveLength(1);
  });
});

describe('relay', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function relayClient(supervisor: GuestSupervisor, admitted?: Promise<void>): Promise<{ client: GuestClient; close: () => void }> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-relay-test-'));
    dirs.push(dir);
    const server = await startRelay(path.join(dir, 'relay.sock'), supervisor, admitted);
    const socket = connect(path.join(dir, 'relay.sock'));
    const client = new GuestClient(socket, { requestTimeoutMs: 5000 });
    return {
      client,
      close: () => {
        client.close();
        server.close();
      },
    };
  }

  it('holds a connection until the run admits it: no ready message before, requests answered after', async () => {
    const supervisor = await GuestSupervisor.start(bootFake, quiet);
    let admit!: () => void;
    const { client, close } = await relayClient(supervisor, new Promise<void>((resolve) => (admit = resolve)));
    try {
      let ready = false;
      void client.ready.then(() => (ready = true));
      const answer = client.request('ping', {});
      await settle();
      expect(ready).toBe(false);
      admit();
      expect((await client.ready).kernel).toBe('fake-1');
      expect(await answer).toBe('answer from guest 1');
    } finally {
      close();
      await supervisor.stop();
    }
  });

  it('closes the connections it holds when the run gives up instead of admitting them', async () => {
    const supervisor = await GuestSupervisor.start(bootFake, quiet);
    let refuse!: (error: Error) => void;
    const { client, close } = await relayClient(supervisor, new Promise<void>((_resolve, reject) => (refuse = reject)));
    try {
      await settle();
      refuse(new Error('given up'));
      await expect(client.ready).rejects.toBeInstanceOf(GuestGoneError);
    } finally {
      close();
      await supervisor.stop();
    }
  });

  it('forwards requests, reports the one the guest died under as CRASHED, and refuses stale ones until reattach', async () => {
    const supervisor = await GuestSupervisor.start(bootFake, quiet);
    const { client, close } = await relayClient(supervisor);
    try {
      expect((await client.ready).kernel).toBe('fake-1');
      expect(await client.request('ping', {})).toBe('answer from guest 1');

      sessions[0]!.answer = 'hang';
      const underCrash = client.request('ping', {});
      await settle();
      sessions[0]!.crash();
      const crashed = await underCrash.then(
        () => undefined,
        (error: { code?: string; message: string }) => error,
      );
      expect(crashed?.code).toBe(CRASHED_CODE);
      expect(crashed?.message.startsWith(CRASHED_MARK)).toBe(true);
      expect(crashed?.message).toMatch(/BUG: unable to handle page fault/);

      // The connection still holds the dead guest's fds and addresses: nothing reaches the new guest.
      await expect(client.request('ping', {})).rejects.toMatchObject({ code: REBOOTED_CODE });
      expect((await client.reattach()).kernel).toBe('fake-2');
      expect(await client.request('ping', {})).toBe('answer from guest 2');
    } finally {
      close();
      await supervisor.stop();
    }
  });

  it('fails every request as not run once no guest is left', async () => {
    const supervisor = await GuestSupervisor.start(bootFake, quiet);
    const { client, close } = await relayClient(supervisor);
    try {
      await client.ready;
      for (let i = 0; i < 3; i++) {
        sessions[i]!.crash(`crash ${i + 1}`);
        await settle();
      }
      await expect(client.reattach()).rejects.toMatchObject({ code: GONE_CODE, message: expect.stringMatching(/^not run: no guest left/) as unknown });
    } finally {
      close();
      await supervisor.stop();
    }
  });
});
