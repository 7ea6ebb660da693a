/**
 * Faults against a real third-party server: Debian's nginx in a container (harness/nginx:local),
 * and a real client (curl) in the same client namespace as the probe, under the same fault. The
 * probe's observation must agree with curl's: same kernel outcome (errno), same SYN
 * retransmissions counted by the client namespace, time inside the model's window (curl's own
 * clock, `-w %{time_total}`).
 */
import { images } from '../docker/images.js';
import { isFaultName } from '../faults/index.js';
import { predictSynTimeout, synSysctlsFrom } from '../harness/model/tcp.js';
import type { RunEnv } from '../harness/engine/runner.js';
import { curlArgv, dockerSkipReason, dockerUp, runRealClient, type RealClientResult } from './container-clients.js';
import { describe, expect, isRoot, runClock, test } from './support/fixtures.js';

/** A duringFault hook that runs curl and keeps what it saw. */
function withCurl(connectTimeoutS: number): { env: Omit<RunEnv, 'session'>; real: () => RealClientResult } {
  let real: RealClientResult | undefined;
  return {
    env: {
      duringFault: async ({ runId, target }) => {
        real = await runRealClient(runId, target, images.nginx.name, curlArgv(target, connectTimeoutS), (connectTimeoutS + 30) * 1000);
      },
    },
    real: () => {
      if (!real) throw new Error('curl did not run');
      return real;
    },
  };
}

describe.skipIf(!isRoot || !dockerUp)(`nginx in a container${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker'] }, () => {
  test('syn-drop: the probe and curl both time out after the predicted SYN retransmissions, inside the window', async ({ harness }) => {
    const curl = withCurl(60);
    const r = await harness.run({ scenario: 'syn-drop', target: 'nginx' }, curl.env);
    expect(r).toPass();
    expect(r.target).toMatchObject({ name: 'nginx', backend: 'container', port: 80 });
    // The pod's end of the veth that joins the holders (no Docker network).
    expect(r.target.address).toBe('198.18.0.1');
    const p = predictSynTimeout(synSysctlsFrom(r.sysctls.client), await runClock(r));
    const connect = r.steps.find((s) => s.label === 'connect')!;
    expect(r).toFailWith('ETIMEDOUT', 'connect');
    expect(connect.durationMs).toBeInWindow(p.windowMs);
    expect(r.counters.client.TcpExtTCPSynRetrans).toBe(p.retransmits);

    const c = curl.real();
    // curl maps a kernel ETIMEDOUT on connect to exit 28 (or 7 in older versions): never its own
    // --connect-timeout here (60 s), so the kernel's SYN timeout ended it.
    expect([7, 28]).toContain(c.exitCode);
    expect(c.stderr).toMatch(/failed: Connection timed out/);
    expect(Number(c.stdout.trim()) * 1000).toBeInWindow(p.windowMs);
    expect(c.durationMs).toBeGreaterThanOrEqual(p.windowMs[0]);
    expect(c.durationMs - c.overheadMs).toBeLessThanOrEqual(p.windowMs[1]);
    expect(c.counters.TcpExtTCPSynRetrans).toBe(p.retransmits);
    expect(c.counters.TcpExtTCPAbortOnTimeout).toBe(1);
    expect(c.rulesHit['drop-syn']).toBe(p.synsSent);
    expect(r.revert.failed).toEqual([]);
  });

  test('app-crash (idle): nginx killed mid-connection; the probe reads EOF, then a new connection is refused for curl too', async ({ harness }) => {
    const curl = withCurl(10);
    const r = await harness.run({ scenario: 'app-crash', target: 'nginx', params: { variant: 'idle' } }, curl.env);
    expect(r).toPass();
    expect(r).toHaveVisited('client', 'CLOSE_WAIT');
    const c = curl.real();
    // The namespace outlives the process (the pod holder keeps it), so the kernel answers the
    // SYN with a RST: refused at once, no timer.
    expect(c.exitCode).toBe(7);
    expect(c.stderr).toMatch(/failed: Connection refused/);
    expect(c.counters.TcpAttemptFails).toBe(1);
    expect(c.counters.TcpExtTCPSynRetrans ?? 0).toBe(0);
  });

  test('app-crash (after-death): the probe gets ECONNREFUSED, as curl does', async ({ harness }) => {
    const curl = withCurl(10);
    const r = await harness.run({ scenario: 'app-crash', target: 'nginx', params: { variant: 'after-death' } }, curl.env);
    expect(r).toPass();
    expect(r.steps.some((s) => s.errno === 'ECONNREFUSED')).toBe(true);
    const c = curl.real();
    expect(c.exitCode).toBe(7);
    expect(c.stderr).toMatch(/failed: Connection refused/);
    expect(c.counters.TcpAttemptFails).toBe(1);
  });

  test.skipIf(!isFaultName('reject'))('reject (icmp-host-unreachable at connect): the probe gets EHOSTUNREACH at once, curl "No route to host"', async ({ harness }) => {
    const curl = withCurl(10);
    const r = await harness.run({ scenario: 'reject', target: 'nginx', params: { with: 'icmp-host-unreachable', when: 'connect' } }, curl.env);
    expect(r).toPass();
    expect(r.steps.some((s) => s.errno === 'EHOSTUNREACH')).toBe(true);
    const c = curl.real();
    expect(c.exitCode).toBe(7);
    expect(c.stderr).toMatch(/failed: No route to host/);
    expect(c.counters.TcpExtTCPSynRetrans ?? 0).toBe(0);
  });
});
