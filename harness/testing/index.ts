/**
 * For users' own vitest suites: `import { test, expect } from '@netfault/harness/testing'` gives a
 * `harness` fixture (runs scenarios, reverts everything after each test) and the domain matchers
 * (`toPass`, `toFailWith`, `toHaveVisited`, `toBeInWindow`; for your own client —
 * `harness.run({ scenario, client: { argv } })` — `toHaveClientExit`, `toHaveClientEndedWithin`,
 * `toHaveConnectionsEndedIn`, `toHaveClientEndedBy`). Needs vitest 4 as a dev dependency.
 */
import './matchers.js';
export { describe, expect, isRoot, test, type HarnessFixture } from './fixtures.js';
export type { EndedBy, TcpState } from './matchers.js';
export type { ClientResult, Result } from '../verdict/result.js';
export type { ClientSpec } from '../engine/client-spec.js';
