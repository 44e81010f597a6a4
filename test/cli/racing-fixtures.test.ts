/**
 * The fixture drivers whose bug shows only when two faults run at once (see fixture-runs.ts), on both
 * series. make test runs this file alone (vitest.config.ts CLI_ALONE): the race needs the guest's two
 * vCPUs on the host's two cores at the same time.
 */
import { SUPPORTED_SERIES } from '../../tools/kernel.js';
import { describeRacingFixtureRuns } from './fixture-runs.js';

describeRacingFixtureRuns([...SUPPORTED_SERIES]);
