/** The suites use the same fixture and matchers the package offers users (harness/testing). */
export { describe, expect, isRoot, test, type HarnessFixture } from '../../harness/testing/index.js';
