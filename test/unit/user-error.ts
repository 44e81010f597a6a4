/** The one-line errors the CLI prints (tools/exit-codes.ts), as unit tests expect them. */
import { expect } from 'vitest';
import { ExitCode, SetupError, UserError } from '../../tools/exit-codes.js';

/**
 * Runs `action`, expects it to throw a one-line UserError with exit code
 * `code` (a SetupError exactly when that is 3), and returns its message.
 */
export function userErrorOf(action: () => unknown, code: number): string {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UserError);
  const error = caught as UserError;
  expect(error.exitCode).toBe(code);
  expect(error instanceof SetupError).toBe(code === ExitCode.SETUP);
  expect(error.message).not.toContain('\n');
  expect(error.message.length).toBeGreaterThan(0);
  return error.message;
}
