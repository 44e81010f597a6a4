/**
 * Every way a run can end, each with its own exit code, so that CI and
 * scripts can tell "the driver is wrong" from "the VM never came up".
 * `vm run` passes the guest command's own code through, so the
 * infrastructure codes sit high, away from the codes commands usually use.
 */
export const ExitCode = {
  PASSED: 0,
  TESTS_FAILED: 1,
  USAGE: 2,
  SETUP: 3,
  GUEST_CRASHED: 120,
  BOOT_FAILED: 121,
  TIMED_OUT: 124,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error the user can act on: printed as one line, without a stack trace,
 * and mapped to an exit code.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.USAGE,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** A missing tool, kernel, header tree or build output. */
export class SetupError extends UserError {
  constructor(message: string) {
    super(message, ExitCode.SETUP);
    this.name = 'SetupError';
  }
}
