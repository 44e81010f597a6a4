/**
 * Every conformance file's case and hook timeouts, from the shared guest's
 * request deadline (tools/qemu/deadlines.ts caseTimeoutMs), known only once
 * it booted: on a slower machine the cases may take longer, and a hung
 * request is still reported as the hang it is, before vitest's timeout.
 * vitest.config.ts keeps the floors for anything that runs before this.
 */
import { inject, vi } from 'vitest';

const caseMs = inject('caseTimeoutMs');
// A hook (a module load, a target's first open) is given two cases' time, as 120 s was to 60 s.
vi.setConfig({ testTimeout: caseMs, hookTimeout: 2 * caseMs });
