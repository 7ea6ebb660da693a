/**
 * `test` with a `harness` fixture: `await harness.run({ scenario: 'syn-drop' })` runs a scenario
 * on the real kernel. Teardown is guaranteed: every journal of the test is reverted after it (also
 * when it fails or times out), and the fixture then checks that nothing of its runs is left.
 */
import { readdir } from 'node:fs/promises';
import { test as base } from 'vitest';
import { NETNS_DIR } from '../core/netns.js';
import type { Result } from '../verdict/result.js';
import { runScenario, type RunEnv, type RunRequest } from '../engine/runner.js';
import { Session } from '../core/session.js';

export interface HarnessFixture {
  run(req: RunRequest, env?: Omit<RunEnv, 'session'>): Promise<Result>;
  session: Session;
}

export const test = base.extend<{ harness: HarnessFixture }>({
  // eslint-disable-next-line no-empty-pattern
  harness: async ({}, use) => {
    const session = new Session();
    const runIds: string[] = [];
    await use({
      session,
      async run(req, env = {}) {
        const r = await runScenario(req, { ...env, session });
        runIds.push(r.runId);
        return r;
      },
    });
    await session.revertAll();
    const left = (await readdir(NETNS_DIR).catch(() => [] as string[])).filter((n) => runIds.some((id) => n.startsWith(`harness-${id}-`)));
    if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  },
});

export { describe, expect } from 'vitest';

/** True when the suites can touch namespaces (root). Suites skip with this reason otherwise. */
export const isRoot = process.getuid?.() === 0;
