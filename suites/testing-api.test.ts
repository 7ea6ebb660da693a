/**
 * The testing API a user gets (`harness/testing`'s fixture and client matchers, and the library's
 * `runScenario` with a `client`), on the real kernel: a client with its own 2 s connect timeout
 * under syn-drop is ended by itself, one without a timeout by the kernel at the end of the
 * schedule the model predicts; every bound the tests use comes from the run's own prediction.
 */
import { readdir } from 'node:fs/promises';
import { runScenario, type ClientSpec } from '../harness/index.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

/** A Node.js client (the node running this suite, so it exists here): connect, then close; `timeoutMs` its own give-up. */
function nodeClient(timeoutMs?: number): ClientSpec {
  const code = [
    "const s = require('net').connect(Number(process.argv[2]), process.argv[1]);",
    timeoutMs ? `s.setTimeout(${timeoutMs}, () => { console.error('gave up'); process.exit(1); });` : '',
    "s.on('connect', () => s.end());",
    "s.on('error', (e) => { console.error(e.code); process.exit(1); });",
  ].join('\n');
  return { argv: [process.execPath, '-e', code, '{host}', '{port}'] };
}

describe.skipIf(!isRoot)('testing API: your own client under a fault', { tags: ['netns'] }, () => {
  test.concurrent('a client with its own 2 s timeout gives up on a dead host before the kernel would', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-drop', client: nodeClient(2000) });
    expect(r).toPass();
    const kernelGivesUpMs = r.client!.prediction.endsMs![0];
    expect(r).toHaveClientExit('nonzero');
    expect(r).toHaveClientEndedWithin(kernelGivesUpMs);
    expect(r).toHaveConnectionsEndedIn('SYN_SENT');
    expect(r).toHaveClientEndedBy('client');
    expect(r).not.toHaveClientEndedBy('kernel');
    expect(r.client!.stderrTail).toContain('gave up');
  });

  test.concurrent('a client without a timeout waits for the kernel: ETIMEDOUT at the end of the predicted schedule', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-drop', client: nodeClient() });
    expect(r).toPass();
    expect(r).toHaveClientExit('nonzero');
    expect(r).toHaveConnectionsEndedIn('SYN_SENT');
    expect(r).toHaveClientEndedBy('kernel');
    // It lived at least until the kernel's earliest give-up (its connection alone lasted that long).
    expect(r).not.toHaveClientEndedWithin(r.client!.prediction.endsMs![0]);
    expect(r.client!.stderrTail).toContain(r.client!.prediction.errno!);
  });

  test('the library: runScenario({ scenario, target, client }) returns the Result with client, and reverts', async () => {
    const r = await runScenario({ scenario: 'reject', target: 'builtin', client: nodeClient(2000) });
    expect(r).toPass();
    expect(r.client).toMatchObject({ exitCode: 1, timedOut: false });
    // reject (icmp-port-unreachable at connect) refuses at once: ECONNREFUSED, the prediction's errno.
    expect(r.client!.stderrTail.trim()).toBe(r.client!.prediction.errno);
    expect(r.revert.failed).toEqual([]);
    expect((await readdir('/run/netns').catch(() => [] as string[])).filter((n) => n.startsWith(`harness-${r.runId}-`))).toEqual([]);
  });
});
