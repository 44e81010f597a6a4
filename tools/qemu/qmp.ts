/**
 * A minimal QMP client (QEMU's JSON monitor, one object a line) on a unix
 * socket QEMU listens on: enough to stop, migrate and continue a guest
 * (snapshot.ts) and to learn when a restored one runs. One command at a
 * time; events are skipped.
 */
import { type Socket, connect } from 'node:net';

export class Qmp {
  private buffered = '';
  private waiting?: { resolve: (value: unknown) => void; reject: (error: Error) => void };
  private closedError?: Error;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('QMP connection closed')));
  }

  /** Connects (retrying while QEMU has not created the socket yet) and negotiates capabilities. */
  static async open(socketPath: string, timeoutMs = 10000): Promise<Qmp> {
    const start = Date.now();
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const attempt = connect(socketPath, () => resolve(attempt));
          attempt.once('error', reject);
        });
        const qmp = new Qmp(socket);
        await qmp.next(); // the greeting
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (error) {
        if (Date.now() - start > timeoutMs) throw error;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }

  /** Runs one command; its `return`, or throws QEMU's error description. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    this.socket.write(`${JSON.stringify({ execute: command, ...(args !== undefined && { arguments: args }) })}\n`);
    const reply = (await this.next()) as { return?: unknown; error?: { desc?: string } };
    if (reply.error !== undefined) throw new Error(`QMP ${command}: ${reply.error.desc ?? 'error'}`);
    return reply.return;
  }

  /**
   * After `-incoming`: waits for the state to load, then continues the
   * guest if it was saved stopped (QEMU restores the saved run state).
   */
  async runAfterIncoming(timeoutMs: number): Promise<void> {
    const start = Date.now();
    for (;;) {
      const status = ((await this.execute('query-status')) as { status?: string }).status;
      if (status === 'running') return;
      if (status !== 'inmigrate') {
        await this.execute('cont');
        return;
      }
      if (Date.now() - start > timeoutMs) throw new Error(`the saved state is not loaded after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Polls query-migrate until the migration ends; throws unless it completed. */
  async waitMigrated(): Promise<void> {
    for (;;) {
      const info = (await this.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
      if (info.status === 'completed') return;
      if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`migration ${info.status}: ${info['error-desc'] ?? ''}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  /** The next reply or greeting (events are skipped). */
  private next(): Promise<unknown> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    const pending = new Promise<unknown>((resolve, reject) => (this.waiting = { resolve, reject }));
    this.drain();
    return pending;
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    this.drain();
  }

  private drain(): void {
    for (;;) {
      if (this.waiting === undefined) return;
      const end = this.buffered.indexOf('\n');
      if (end < 0) return;
      const line = this.buffered.slice(0, end).trim();
      this.buffered = this.buffered.slice(end + 1);
      if (line === '') continue;
      const message = JSON.parse(line) as Record<string, unknown>;
      if ('event' in message) continue;
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve(message);
    }
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
  }
}
