/**
 * The guest agent: runs inside the VM (started by vm/init.sh), serves the
 * host's requests over the virtio-serial port and exits when the host goes
 * away, after which init powers the guest off.
 *
 * A fault in the code under test must never take the agent down: native
 * calls report SIGSEGV/SIGBUS as errors (the addon guards every access), and
 * every request is answered, successfully or with an error.
 */
import { spawn } from 'node:child_process';
import { createReadStream, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { type NativeAddon, loadNative } from '../native/index.js';
import {
  type ErrorInfo,
  type ExecArgs,
  type NativeArgs,
  type ReadyMessage,
  type Request,
  LineDecoder,
  decodeMessage,
  encodeMessage,
} from './protocol.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set (the agent is started by vm/init.sh)`);
  return value;
}

const port = openSync(required('MMAPKIT_PORT'), 'r+');
const native: NativeAddon = loadNative(path.join(required('MMAPKIT_ROOT'), 'native/build/Release/mmapkit_native.node'));

// Writes block until the host has room; that back-pressure is what we want.
function send(message: unknown): void {
  const bytes = Buffer.from(encodeMessage(message));
  for (let written = 0; written < bytes.length; ) {
    written += writeSync(port, bytes, written);
  }
}

function errorInfo(error: unknown): ErrorInfo {
  if (!(error instanceof Error)) return { message: String(error) };
  const fields = error as Error & Partial<Omit<ErrorInfo, 'message'>>;
  return {
    message: error.message,
    ...(typeof fields.code === 'string' && { code: fields.code }),
    ...(typeof fields.errno === 'number' && { errno: fields.errno }),
    ...(typeof fields.syscall === 'string' && { syscall: fields.syscall }),
    ...(typeof fields.address === 'bigint' && { address: fields.address }),
  };
}

function exec(id: number, { argv, env }: ExecArgs): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = argv;
    if (command === undefined) {
      reject(new Error('exec needs a command'));
      return;
    }
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    child.stdout.on('data', (data: Buffer) => send({ id, stream: 'stdout', data }));
    child.stderr.on('data', (data: Buffer) => send({ id, stream: 'stderr', data }));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
}

function callNative({ fn, args }: NativeArgs): unknown {
  const member: unknown = (native as unknown as Record<string, unknown>)[fn];
  if (typeof member === 'function') return (member as (...values: unknown[]) => unknown).apply(native, args);
  if (member !== undefined) return member;
  throw new Error(`the native addon has no ${fn}`);
}

async function handle(request: Request): Promise<void> {
  try {
    let value: unknown;
    switch (request.op) {
      case 'exec':
        value = await exec(request.id, request.args);
        break;
      case 'native':
        value = callNative(request.args);
        break;
      case 'ping':
        value = 'pong';
        break;
      default:
        throw new Error(`unknown op ${(request as { op: unknown }).op as string}`);
    }
    send({ id: request.id, ok: true, value });
  } catch (error) {
    send({ id: request.id, ok: false, error: errorInfo(error) });
  }
}

function readyMessage(): ReadyMessage {
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  const clocksource = readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim();
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return { type: 'ready', uptime, kernel, clocksource };
}

// The first write blocks until the host has connected; reading before that
// would see end-of-file (virtio_console returns 0 while no host is attached).
send(readyMessage());

const decoder = new LineDecoder();
createReadStream('', { fd: port, autoClose: false })
  .on('data', (chunk) => {
    for (const line of decoder.push(chunk as Buffer)) void handle(decodeMessage(line) as Request);
  })
  .on('end', () => process.exit(0))
  .on('error', (error) => {
    console.error(`mmapkit-agent: channel error: ${error.message}`);
    process.exit(1);
  });
