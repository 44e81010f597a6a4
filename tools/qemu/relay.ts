/**
 * Lets other processes (vitest's test workers) use the run's guest: a unix
 * socket that speaks the guest protocol, forwarding each request to the live
 * session's channel under a fresh id and routing answers and output back.
 * Each connection first receives the guest's ready message, once the run
 * admits the connections (startRelay).
 *
 * When the guest dies under a request, that request fails with a CRASHED
 * error carrying the console excerpt (CRASHED_CODE), and the supervisor boots
 * a new guest. A connection made before the crash holds fds and addresses
 * that meant something only to the dead guest: its requests fail with
 * REBOOTED_CODE until it sends `reattach`, so that stale cleanup (munmap of an
 * old address, close of an old fd) can never hit the new guest's agent.
 */
import { type Server, type Socket, createServer } from 'node:net';
import { readRequest } from '../../guest/protocol-check.js';
import { type OutputEvent, type Request, LineDecoder, encodeMessage } from '../../guest/protocol.js';
import { GuestError, GuestGoneError } from './guest-client.js';
import type { CrashRecord, GuestSupervisor } from './guest-supervisor.js';
import type { VmSession } from './session.js';

/** The error code of a request the guest died under. */
export const CRASHED_CODE = 'EGUESTCRASHED';
/** The error code of a request from a connection whose guest was replaced since it attached. */
export const REBOOTED_CODE = 'EGUESTREBOOTED';
/** The error code of every request once no guest can be had any more. */
export const GONE_CODE = 'EGUESTGONE';
/** What a crashed case's error message starts with; the summary counts those cases as crashed. */
export const CRASHED_MARK = 'CRASHED:';

async function crashMessage(supervisor: GuestSupervisor, error: GuestGoneError, session: VmSession): Promise<{ message: string; code: string }> {
  const crash = await supervisor.crashOfWithin(session);
  return { message: `${CRASHED_MARK} ${crash === undefined ? error.message : describeCrash(crash)}`, code: CRASHED_CODE };
}

/** The reason, where the whole console log is, and the lines that show what happened. */
function describeCrash(crash: CrashRecord): string {
  return `${crash.reason} (console: ${crash.consoleLog})\n${crash.excerpt.map((line) => `  ${line}`).join('\n')}`;
}

function serve(socket: Socket, supervisor: GuestSupervisor, admitted: Promise<void>): void {
  let attachedTo = supervisor.generation;
  const send = (message: unknown): void => {
    if (!socket.destroyed) socket.write(encodeMessage(message));
  };
  const forward = async ({ id, ...body }: Request): Promise<void> => {
    await admitted;
    if (body.op === 'reattach') {
      const session = await supervisor.session();
      attachedTo = supervisor.generation;
      send({ id, ok: true, value: session.ready });
      return;
    }
    if (attachedTo !== supervisor.generation) {
      const crash = supervisor.crashes.at(-1);
      const message = `the guest was replaced (what this connection had open there is gone) after: ${crash === undefined ? 'a crash' : describeCrash(crash)}`;
      send({ id, ok: false, error: { message, code: REBOOTED_CODE } });
      return;
    }
    const session = await supervisor.session();
    const onOutput = (event: OutputEvent): void => send({ ...event, id });
    try {
      send({ id, ok: true, value: await session.guest.request(body.op, body.args, { onOutput }) });
    } catch (error) {
      if (error instanceof GuestGoneError) {
        send({ id, ok: false, error: await crashMessage(supervisor, error, session) });
      } else {
        const info = error instanceof GuestError ? { ...error, message: error.message } : { message: (error as Error).message };
        send({ id, ok: false, error: info });
      }
    }
  };
  const forwardOrReport = (request: Request): void => {
    // Only when no guest can be had any more (too many crashes, or a replacement failed to boot).
    forward(request).catch((error: Error) => {
      const message = `not run: no guest left (${error.message})`;
      send({ id: request.id, ok: false, error: { message, code: GONE_CODE } });
    });
  };
  void Promise.all([supervisor.session(), admitted]).then(
    ([session]) => send(session.ready),
    () => socket.destroy(),
  );
  const decoder = new LineDecoder();
  socket.on('data', (chunk: Buffer) => {
    for (const line of decoder.push(chunk)) {
      // A line that is not a request is answered as an error when it names an id; otherwise no one waits for an answer.
      const read = readRequest(line);
      if ('request' in read) forwardOrReport(read.request);
      else if (read.answer !== undefined) send(read.answer);
    }
  });
  socket.on('error', () => socket.destroy());
}

/**
 * `admitted`: a connection is sent the ready message, and its requests are
 * forwarded, only once it resolves (`mmapkit test` starts its test workers
 * while the targets are still brought up: tools/test/command.ts); when it
 * rejects, every connection is closed instead.
 */
export function startRelay(socketPath: string, supervisor: GuestSupervisor, admitted: Promise<void> = Promise.resolve()): Promise<Server> {
  const server = createServer((socket) => serve(socket, supervisor, admitted));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}
