/** The fixture drivers on the 6.12 series: see fixture-runs.ts. */
import { describeFixtureRuns } from './fixture-runs.js';

describeFixtureRuns({ series: '6.12', quick: true });
