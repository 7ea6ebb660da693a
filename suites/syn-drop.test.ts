/**
 * syn-drop on the built-in netns target: connect() against a target that drops every SYN must
 * time out with ETIMEDOUT inside the window the model predicts from the client's sysctls, after
 * exactly the predicted number of SYN retransmissions, with the client seen in SYN_SENT and the
 * drop rule hit once per SYN.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { predictSynTimeout, synSysctlsFrom } from '../harness/model/tcp.js';
import { describe, expect, isRoot, runClock, test } from './support/fixtures.js';

describe.skipIf(!isRoot)('syn-drop (netns)', { tags: ['netns'] }, () => {
  test('default scenario: ETIMEDOUT in the predicted window, retransmissions as predicted, rule hit', async ({ harness }) => {
    const r = await harness.run({ scenario: 'syn-drop' });
    expect(r).toPass();
    expect(r).toFailWith('ETIMEDOUT', 'connect');
    // Recompute the prediction from the sysctls the run read back, independently of the fault.
    const p = predictSynTimeout(synSysctlsFrom(r.sysctls.client), await runClock(r));
    const connect = r.steps.find((s) => s.label === 'connect')!;
    expect(connect.durationMs).toBeInWindow(p.windowMs);
    expect(r).toHaveVisited('client', 'SYN_SENT');
    expect(r).not.toHaveVisited('server', 'SYN_RECV');
    expect(r.counters.client.TcpExtTCPSynRetrans).toBe(p.retransmits);
    expect(connect.tcp?.totalRetrans).toBe(p.retransmits);
    expect(r.fault.rulesHit['drop-syn']).toBe(p.synsSent);
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent.for([1, 2, 3])('tcp_syn_retries=%i: the window follows the sysctl', { tags: ['slow'] }, async (retries, { harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-drop', sysctls: [{ side: 'client', key: 'net.ipv4.tcp_syn_retries', value: String(retries) }] });
    expect(r.sysctls.client['net.ipv4.tcp_syn_retries']).toBe(String(retries));
    const p = predictSynTimeout(synSysctlsFrom(r.sysctls.client), await runClock(r));
    expect(r.expected.steps.connect?.windowMs).toEqual(p.windowMs);
    expect(r.steps[0]!.durationMs).toBeInWindow(p.windowMs);
    expect(r.counters.client.TcpExtTCPSynRetrans).toBe(p.retransmits);
    expect(r).toPass();
  });

  test('TCP_SYNCNT on the socket overrides the sysctl', async ({ harness }) => {
    const r = await harness.run({ scenario: 'syn-drop', params: { syncnt: 1 } });
    const p = predictSynTimeout(synSysctlsFrom(r.sysctls.client, 1), await runClock(r));
    expect(p.retransmits).toBe(2);
    expect(r.counters.client.TcpExtTCPSynRetrans).toBe(2);
    expect(r).toPass();
  });

  test('--sysctls-from: production settings are applied in the namespaces and drive the model', async ({ harness }) => {
    const dir = await mkdtemp(join(tmpdir(), 'prod-'));
    try {
      const file = join(dir, 'prod-host.txt');
      // What `sysctl -a` prints, with a key this kernel lacks and a host-global one.
      await writeFile(file, 'net.ipv4.tcp_syn_retries = 1\nnet.ipv4.tcp_syn_linear_timeouts = 0\nnet.ipv4.tcp_made_up = 7\nnet.core.rmem_max = 1\nkernel.pid_max = 99\n');
      const r = await harness.run({ scenario: 'syn-drop', sysctlsFrom: file });
      expect(r.sysctls.client['net.ipv4.tcp_syn_retries']).toBe('1');
      expect(r.sysctls.client['net.ipv4.tcp_syn_linear_timeouts']).toBe('0');
      // Without linear timeouts, retries=1 is the classic 1 s + 2 s: one retransmission, 3 s.
      const p = predictSynTimeout(synSysctlsFrom(r.sysctls.client), await runClock(r));
      expect(p.retransmits).toBe(1);
      expect(r.steps[0]!.durationMs).toBeInWindow(p.windowMs);
      expect(r).toPass();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('--kernel-defaults: the production two-minute hang, predicted from the default sysctls', { tags: ['slow'], timeout: 240_000 }, async ({ harness }) => {
    const r = await harness.run({ scenario: 'syn-drop', kernelDefaults: true });
    expect(r.sysctls.client['net.ipv4.tcp_syn_retries']).toBe('6');
    const p = predictSynTimeout(synSysctlsFrom(r.sysctls.client), await runClock(r));
    expect(p.timeoutMs).toBe(131_000);
    expect(r.steps[0]!.durationMs).toBeInWindow(p.windowMs);
    expect(r.counters.client.TcpExtTCPSynRetrans).toBe(p.retransmits);
    expect(r).toPass();
  });
});
