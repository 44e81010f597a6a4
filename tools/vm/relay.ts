/**
 * Lets other processes (vitest's test workers) use one booted guest: a unix
 * socket that speaks the guest protocol, forwarding each request to the
 * session's channel under a fresh id and routing answers and output back.
 * Each connection first receives the guest's ready message.
 */
import { type Server, type Socket, createServer } from 'node:net';
import {
  type OutputEvent,
  type ReadyMessage,
  type Request,
  LineDecoder,
  decodeMessage,
  encodeMessage,
} from '../../vm/protocol.js';
import { type GuestClient, GuestError } from './guest-client.js';

function serve(socket: Socket, guest: GuestClient, ready: ReadyMessage): void {
  const send = (message: unknown): void => {
    if (!socket.destroyed) socket.write(encodeMessage(message));
  };
  send(ready);
  const decoder = new LineDecoder();
  socket.on('data', (chunk: Buffer) => {
    for (const line of decoder.push(chunk)) {
      const { id, ...body } = decodeMessage(line) as Request;
      const onOutput = (event: OutputEvent): void => send({ ...event, id });
      guest.request(body, { onOutput }).then(
        (value: unknown) => send({ id, ok: true, value }),
        (error: Error) => send({ id, ok: false, error: error instanceof GuestError ? { ...error, message: error.message } : { message: error.message } }),
      );
    }
  });
  socket.on('error', () => socket.destroy());
}

export function startRelay(socketPath: string, guest: GuestClient, ready: ReadyMessage): Promise<Server> {
  const server = createServer((socket) => serve(socket, guest, ready));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}
