/**
 * For users' own vitest suites: `import { test, expect } from 'harness/testing'` gives a `harness`
 * fixture (runs scenarios, reverts everything after each test) and the domain matchers
 * (`toPass`, `toFailWith`, `toHaveVisited`, `toBeInWindow`). Needs vitest as a dev dependency.
 */
import './matchers.js';
export { describe, expect, isRoot, test, type HarnessFixture } from './fixtures.js';
