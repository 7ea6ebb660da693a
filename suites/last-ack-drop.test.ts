/**
 * last-ack-drop on the built-in echo server: once connected, the client's bare ACKs are dropped
 * at the server, so the ACK of the server's FIN is lost. The server's orphan must stay in
 * LAST_ACK, retransmit its FIN as its own tcp_orphan_retries dictate and vanish in the window;
 * the client must sit in TIME_WAIT, answering each FIN with an ACK the rule counts.
 */
import { orphanFinSysctlsFrom, predictOrphanFin } from '../harness/model/teardown.js';
import { watchedSpanMs } from '../harness/model/watch.js';
import { stateSpans } from '../harness/verdict/checks.js';
import { describe, isRoot, runClock, test } from './support/fixtures.js';

describe.skipIf(!isRoot)('last-ack-drop (netns)', { tags: ['netns'] }, () => {
  test.concurrent('default: server LAST_ACK, TLP + 3 FIN retransmissions, gone in the window; client TIME_WAIT', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'last-ack-drop' });
    expect(r).toPass();
    const p = predictOrphanFin(orphanFinSysctlsFrom(r.sysctls.server, r.sysctls.client), await runClock(r));
    const [la] = stateSpans(r.states.server, 'LAST_ACK');
    expect(la).toMatchObject({ then: 'GONE', retrans: 3 });
    expect(la?.lastsMs).toBeInWindow(watchedSpanMs(p.windowMs, await runClock(r)));
    expect(stateSpans(r.states.client, 'TIME_WAIT')).toMatchObject([{ then: 'held' }]);
    expect(r).not.toHaveVisited('server', 'TIME_WAIT');
    expect(r.counters.server.TcpExtTCPAbortOnTimeout).toBe(1);
    expect(r.fault.rulesHit['drop-last-ack']).toBe(5);
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent("the server's tcp_orphan_retries decides, not the client's", async ({ harness, expect }) => {
    const r = await harness.run({
      scenario: 'last-ack-drop',
      sysctls: [
        { side: 'server', key: 'net.ipv4.tcp_orphan_retries', value: '1' },
        { side: 'client', key: 'net.ipv4.tcp_orphan_retries', value: '3' },
      ],
    });
    expect(r).toPass();
    expect(stateSpans(r.states.server, 'LAST_ACK')[0]?.retrans).toBe(2);
    expect(r.fault.rulesHit['drop-last-ack']).toBe(4);
  });
});
