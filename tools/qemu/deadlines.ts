/**
 * How long the host waits for a guest before presuming it hung, derived
 * from how fast this machine boots one, so that a slower machine is slower,
 * never failed. Each deadline has a floor, the value it had when it was a
 * constant, chosen on this project's machine at a boot (QEMU start to guest
 * agent ready, TCG) of REFERENCE_BOOT_S; a machine whose boot is k times
 * slower gets k times every deadline, and a faster one keeps the floors.
 * Options override each one (README, "Deadlines").
 */

/**
 * QEMU start to guest agent ready under TCG on this project's 2-core machine, idle, when the
 * floors below were in use (README, the `make test` paragraph: 5.8 s).
 */
export const REFERENCE_BOOT_S = 5.8;

/** The deadlines as they were fixed before they scaled: never shorter than these. */
export const DEADLINE_FLOORS = {
  /** The guest agent must be up within this (--boot-timeout). */
  bootS: 60,
  /** One request to the guest (--request-timeout), for `vm run` and the other commands. */
  requestS: 60,
  /**
   * One request during `mmapkit test`: a hang is reported CRASHED and the guest replaced, so
   * it is shorter (a livelocking driver costs one deadline per case until the third hang).
   */
  conformanceRequestS: 20,
} as const;

/**
 * A conformance case may wait this many request deadlines: its own timeout in vitest stays
 * above the request deadline, so that a hang is reported as the hang it is (CRASHED, with
 * the console), not as a test timeout. 3 × 20 s is vitest's former fixed 60 s.
 */
export const REQUEST_DEADLINES_PER_CASE = 3;

/** How much slower than the reference machine a measured boot was; 1 when faster, or unmeasured. */
export function slowdown(measuredBootS: number | undefined): number {
  if (measuredBootS === undefined || !Number.isFinite(measuredBootS) || measuredBootS <= 0) return 1;
  return Math.max(1, measuredBootS / REFERENCE_BOOT_S);
}

/** A floor scaled by the machine's slowdown, in whole seconds (rounded up). */
export function scaledDeadlineS(floorS: number, measuredBootS: number | undefined): number {
  return Math.ceil(floorS * slowdown(measuredBootS));
}

/** The boot deadline: the one asked for, else the floor scaled by the last boot measured on this machine. */
export function bootDeadlineS(givenS: number | undefined, lastBootS: number | undefined): number {
  return givenS ?? scaledDeadlineS(DEADLINE_FLOORS.bootS, lastBootS);
}

/** The request deadline: the one asked for, else the floor scaled by this guest's own boot. */
export function requestDeadlineS(givenS: number | undefined, floorS: number, bootS: number | undefined): number {
  return givenS ?? scaledDeadlineS(floorS, bootS);
}

/** A conformance case's vitest timeout, ms, for a request deadline; never below the floor's. */
export function caseTimeoutMs(requestS: number): number {
  const floorMs = DEADLINE_FLOORS.conformanceRequestS * REQUEST_DEADLINES_PER_CASE * 1000;
  return Math.max(floorMs, requestS * REQUEST_DEADLINES_PER_CASE * 1000);
}
