import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` (pure code, no root, milliseconds) and `suites` (real kernel, real
 * namespaces, real containers; root). Suites are tagged: `netns` needs root and iproute2/iptables,
 * `docker` needs a running engine, `slow` runs long timers. Filter with --tags-filter.
 */
export default defineConfig({
  test: {
    tags: [
      { name: 'netns', description: 'real network namespaces and iptables (root)', timeout: 120_000 },
      { name: 'docker', description: 'needs a running Docker engine and the locally built images', timeout: 180_000 },
      { name: 'slow', description: 'waits on long kernel timers (tens of seconds)', timeout: 300_000 },
      { name: 'cli', description: 'runs the built CLI as a child process', timeout: 60_000 },
    ],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['harness/**/*.test.ts', 'faults/**/*.test.ts', 'targets/**/*.test.ts', 'docker/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'suites',
          sequence: { groupOrder: 1 },
          include: ['suites/**/*.test.ts'],
          exclude: ['suites/cli.test.ts', 'suites/plan.test.ts', 'suites/report.test.ts', 'suites/hardening.test.ts', 'suites/own-server.test.ts', 'suites/package.test.ts', 'suites/nagle-delack.test.ts'],
          setupFiles: ['suites/support/setup.ts'],
          // Scenarios wait on kernel timers, not CPU, but their windows are as tight as packetdrill's
          // and each run has a 5 ms state watcher: one file at a time, 3 concurrent tests, so two
          // cores add no scheduling latency beyond the model's calibrated allowance (two files at
          // once, with containers starting, put FIN_WAIT2 spans and idle waits 1-2 ms late).
          maxWorkers: 1,
          maxConcurrency: 3,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The CLI suite proves "nothing changed on the machine" by comparing snapshots of the
        // host, so it runs alone, after every other suite (a later group), one file at a time.
        // The report suite runs the CLI too, with --all (twelve scenarios at once, 24 watchers):
        // here, so its load never lands on another suite's timing windows.
        extends: true,
        test: {
          name: 'cli',
          include: ['suites/cli.test.ts', 'suites/plan.test.ts', 'suites/report.test.ts', 'suites/hardening.test.ts', 'suites/own-server.test.ts'],
          setupFiles: ['suites/support/setup.ts'],
          sequence: { groupOrder: 2 },
          fileParallelism: false,
          testTimeout: 120_000,
        },
      },
      {
        // Round trips timed to a few ms (a 40 ms delayed ACK plus the wake-ups of the server and
        // the probe): these runs go alone, last, so no container start or other run's watchers
        // take the CPU those wake-ups need — a server that answers late leaves pingpong mode and
        // changes what the kernel does, not just the timing.
        extends: true,
        test: {
          name: 'timing',
          include: ['suites/nagle-delack.test.ts'],
          setupFiles: ['suites/support/setup.ts'],
          sequence: { groupOrder: 3 },
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // npm pack + npm install into a fresh project (tens of seconds of both cores): alone,
        // last, so its CPU never lands on another suite's timing windows.
        extends: true,
        test: {
          name: 'package',
          include: ['suites/package.test.ts'],
          setupFiles: ['suites/support/setup.ts'],
          sequence: { groupOrder: 4 },
          testTimeout: 120_000,
        },
      },
    ],
  },
});
