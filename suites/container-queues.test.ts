/**
 * Queue faults on a container target: the accept and SYN queues must hold exactly what the model
 * says, as on the netns target. This guards the readiness check: it used to connect to the
 * target, and against a server that never accepts that connection sat in the accept queue and
 * took one slot before the fault began (backlog + 1 connects fit on netns, only backlog did here).
 * Server sysctls must also be in force before the target listens (somaxconn is read by listen()).
 */
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, isRoot, test } from './support/fixtures.js';

describe.skipIf(!isRoot || !dockerUp)(`queues in a container${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker'] }, () => {
  test.concurrent('accept-queue-full: backlog + 1 connects fit, the next SYN is dropped', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'accept-queue-full', target: 'probe-container', params: { backlog: 2 } });
    expect(r.target.backend).toBe('container');
    expect(r).toPass();
    expect(r.counters.server.TcpPassiveOpens).toBe(3);
  });

  test.concurrent('accept-queue-full: somaxconn set for the server caps the container\'s listen() backlog', async ({ harness, expect }) => {
    const r = await harness.run({
      scenario: 'accept-queue-full',
      target: 'probe-container',
      params: { backlog: 2 },
      sysctls: [{ side: 'server', key: 'net.core.somaxconn', value: '1' }],
    });
    expect(r).toPass();
    expect(r.states.server.filter((s) => s.state === 'LISTEN').at(-1)?.wq).toBe(1);
    expect(r.counters.server.TcpPassiveOpens).toBe(2);
  });

  test.concurrent('syn-queue-full: the fresh connect gets a cookie once the SYN queue is full', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-queue-full', target: 'probe-container' });
    expect(r).toPass();
    expect(r.counters.server.TcpExtSyncookiesSent).toBeGreaterThan(0);
  });
});
