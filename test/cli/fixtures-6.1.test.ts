/** The fixture drivers on the 6.1 series: see fixture-runs.ts. */
import { describeFixtureRuns } from './fixture-runs.js';

describeFixtureRuns({ series: '6.1', quick: false });
