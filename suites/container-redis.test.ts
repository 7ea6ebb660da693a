/**
 * Faults against a real third-party server: Debian's redis-server in a container
 * (harness/redis:local), with redis-cli as the real client in the probe's own client namespace
 * under the same fault. redis-cli connects with a blocking connect() and no timeout of its own, so
 * under syn-drop the kernel's SYN timeout is the only thing that ends it: its wall time and its
 * error ("Connection timed out") must match the probe's ETIMEDOUT and the model's window.
 */
import { images } from '../docker/images.js';
import { isFaultName } from '../faults/index.js';
import { predictSynTimeout, synSysctlsFrom } from '../harness/model/tcp.js';
import type { RunEnv } from '../harness/engine/runner.js';
import { dockerSkipReason, dockerUp, redisCliArgv, runRealClient, type RealClientResult } from './container-clients.js';
import { describe, expect, isRoot, runClock, test } from './support/fixtures.js';

function withRedisCli(timeoutMs: number): { env: Omit<RunEnv, 'session'>; real: () => RealClientResult } {
  let real: RealClientResult | undefined;
  return {
    env: {
      duringFault: async ({ runId, target }) => {
        real = await runRealClient(runId, target, images.redis.name, redisCliArgv(target), timeoutMs);
      },
    },
    real: () => {
      if (!real) throw new Error('redis-cli did not run');
      return real;
    },
  };
}

describe.skipIf(!isRoot || !dockerUp)(`redis in a container${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker'] }, () => {
  test('syn-drop: the probe gets ETIMEDOUT; redis-cli "Connection timed out" after the same SYN retransmissions, in the window', async ({ harness }) => {
    const cli = withRedisCli(60_000);
    const r = await harness.run({ scenario: 'syn-drop', target: 'redis' }, cli.env);
    expect(r).toPass();
    expect(r.target).toMatchObject({ name: 'redis', backend: 'container', port: 6379 });
    const p = predictSynTimeout(synSysctlsFrom(r.sysctls.client), await runClock(r));
    expect(r).toFailWith('ETIMEDOUT', 'connect');
    const c = cli.real();
    expect(c.exitCode).toBe(1);
    expect(`${c.stdout}${c.stderr}`).toMatch(new RegExp(`Could not connect to Redis at ${r.target.address.replace(/\./g, '\\.')}:6379: Connection timed out`));
    const attempts = c.counters.TcpActiveOpens!;
    expect(attempts).toBe(2);
    // Each attempt is one kernel SYN timeout, back to back: its wall time, less its measured
    // start-up (overheadMs), lies in the sum of the windows.
    expect(c.durationMs).toBeGreaterThanOrEqual(attempts * p.windowMs[0]);
    expect(c.durationMs - c.overheadMs).toBeLessThanOrEqual(attempts * p.windowMs[1]);
    expect(c.counters.TcpExtTCPSynRetrans).toBe(attempts * p.retransmits);
    expect(c.counters.TcpExtTCPAbortOnTimeout).toBe(attempts);
    expect(c.rulesHit['drop-syn']).toBe(attempts * p.synsSent);
  });

  test('app-crash (idle): redis-server killed under an idle connection; the probe reads EOF; redis-cli then "Connection refused"', async ({ harness }) => {
    const cli = withRedisCli(10_000);
    const r = await harness.run({ scenario: 'app-crash', target: 'redis', params: { variant: 'idle' } }, cli.env);
    expect(r).toPass();
    expect(r).toHaveVisited('client', 'CLOSE_WAIT');
    const c = cli.real();
    expect(c.exitCode).toBe(1);
    expect(`${c.stdout}${c.stderr}`).toMatch(/Connection refused/);
    // Two attempts (see the file's comment), each refused by the kernel at once.
    expect(c.counters.TcpActiveOpens).toBe(2);
    expect(c.counters.TcpAttemptFails).toBe(2);
  });

  test.skipIf(!isFaultName('reject'))('reject (tcp-reset at connect): ECONNREFUSED for the probe, "Connection refused" for redis-cli, one SYN per attempt', async ({ harness }) => {
    const cli = withRedisCli(10_000);
    const r = await harness.run({ scenario: 'reject', target: 'redis', params: { with: 'tcp-reset', when: 'connect' } }, cli.env);
    expect(r).toPass();
    expect(r.steps.some((s) => s.errno === 'ECONNREFUSED')).toBe(true);
    const c = cli.real();
    expect(c.exitCode).toBe(1);
    expect(`${c.stdout}${c.stderr}`).toMatch(/Connection refused/);
    expect(c.counters.TcpExtTCPSynRetrans ?? 0).toBe(0);
    // One SYN per attempt, each answered by the REJECT rule's RST: no retransmission.
    expect(c.counters.TcpActiveOpens).toBe(2);
    expect(Object.values(c.rulesHit).reduce((a, b) => a + b, 0)).toBe(2);
  });
});
