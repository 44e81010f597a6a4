/**
 * What every family's setup here needs beyond guest/ioctl-layout.ts: a
 * failing call rethrown with what was being done (the contract of
 * TargetSetup.open: the errno stays in `code`), and typed reads of the
 * profile's setupParams.
 */
import type { SetupContext } from '../../../../guest/setup-api.js';

/** An Error carrying the errno code of the call that failed (the addon's errors have one). */
export interface SetupError extends Error {
  code: string;
}

function codeOf(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return 'EPROTO';
}

/** Runs `call`; a failure is rethrown as "`what`: <its message>", keeping its errno code. */
export function doing<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    const wrapped = new Error(`${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error }) as SetupError;
    wrapped.code = codeOf(error);
    throw wrapped;
  }
}

/** A setup's own refusal (a wrong device, a parameter the driver answered differently): code EPROTO unless given. */
export function setupFailure(message: string, code = 'EPROTO'): SetupError {
  return Object.assign(new Error(message), { code });
}

/** ioctl through the addon, rethrown with `what` on failure; the argument's bytes after the call. */
export function ioctl(context: SetupContext, fd: number, request: bigint, arg: Uint8Array, what: string): Buffer {
  return doing(what, () => context.native.ioctl(fd, request, arg)).arg;
}

/** A whole number parameter in [min, max], or `fallback` when the profile leaves it out. */
export function countParam(context: SetupContext, name: string, fallback: number, min = 1, max = 0xffffffff): number {
  const value = context.params[name] ?? fallback;
  if (!(typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max)) {
    throw setupFailure(`setupParams.${name} must be a whole number in [${min}, ${max}], not ${JSON.stringify(value)}`, 'EINVAL');
  }
  return value;
}

/** A string parameter out of `allowed`, or `fallback`. */
export function choiceParam<T extends string>(context: SetupContext, name: string, allowed: readonly T[], fallback: T): T {
  const value = context.params[name] ?? fallback;
  if (!(typeof value === 'string' && (allowed as readonly string[]).includes(value))) {
    throw setupFailure(`setupParams.${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, not ${JSON.stringify(value)}`, 'EINVAL');
  }
  return value as T;
}

/** Refuses a parameter the setup does not know, as profiles refuse unknown keys. */
export function onlyParams(context: SetupContext, known: readonly string[]): void {
  const unknown = Object.keys(context.params).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw setupFailure(`unknown setupParams ${unknown.map((n) => JSON.stringify(n)).join(', ')} (known: ${known.join(', ') || 'none'})`, 'EINVAL');
  }
}

/** `bytes` rounded up to whole pages: what a driver maps for a buffer of that length. */
export function pageAlign(bytes: number | bigint, pageSize: number): bigint {
  const page = BigInt(pageSize);
  return ((BigInt(bytes) + page - 1n) / page) * page;
}
