/**
 * A profile's knownFindings (tools/profile.ts): a case that a real driver
 * fails for a choice the catalogue calls a bug is reported as a finding
 * about that driver instead of failing the run, as long as it fails the
 * known way. The case itself is never weakened: it runs and fails as for
 * any driver; only its verdict is turned, here, when its failure matches.
 */
import type { KnownFinding } from '../profile.js';

/** The prefix of the annotation a case carries when its failure was a known finding about the driver. */
export const DRIVER_FINDING = 'driver finding:';

/** How a case with a known finding came out. */
export type FindingVerdict =
  /** It failed the known way: report the finding, count the case as passed. */
  | { kind: 'found'; note: string }
  /** It passed, was skipped, or failed another way: the run must fail, with this message. */
  | { kind: 'wrong'; message: string };

export function judgeKnownFinding(known: KnownFinding, state: 'pass' | 'fail' | 'skip', messages: readonly string[]): FindingVerdict {
  const expected = `(known finding: ${known.finding})`;
  if (state === 'pass') return { kind: 'wrong', message: `the known finding disappeared: the case passed ${expected}` };
  if (state === 'skip') return { kind: 'wrong', message: `the known finding was not checked: the case was skipped ${expected}` };
  const pattern = new RegExp(known.match);
  if (messages.some((message) => pattern.test(message))) return { kind: 'found', note: `${DRIVER_FINDING} ${known.finding}` };
  return { kind: 'wrong', message: `the known finding changed: the failure does not match /${known.match}/ ${expected}` };
}
