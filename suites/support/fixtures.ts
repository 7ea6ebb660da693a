/** The suites use the same fixture and matchers the package offers users (harness/testing). */
export { describe, expect, isRoot, test, type HarnessFixture } from '../../harness/testing/index.js';

import { kernelFacts } from '../../harness/core/kernel.js';
import type { KernelClock } from '../../harness/model/timer-wheel.js';
import type { Result } from '../../harness/verdict/result.js';

/** The clock a run's model used: the kernel's HZ and the wake-up lateness the run's calibration measured. */
export async function runClock(r: Pick<Result, 'calibration'>): Promise<KernelClock> {
  const { hz } = await kernelFacts();
  return { hz, ...(r.calibration ? { lateMs: r.calibration.before.maxMs } : {}) };
}

/** Request k's round trip: from its write's start (the request leaves) to the end of the read of its answer (`write-k`, `round-k`). */
export function roundTripMs(r: Pick<Result, 'steps'>, k: number): number {
  const step = (label: string) => r.steps.find((s) => s.label === label)!;
  return step(`round-${k}`).endMs - step(`write-${k}`).startMs;
}
