/**
 * The user's own client under the fault, on the real kernel: real clients (Python's blocking
 * socket, curl's non-blocking connect, Node's net) are run in the client namespace, their
 * connections observed from outside and explained against the kernel model.
 */
import { fmtWin } from '../harness/verdict/client.js';
import type { Result } from '../harness/verdict/result.js';
import { dockerSkipReason, dockerUp } from './container-clients.js';
import { describe, isRoot, test } from './support/fixtures.js';

const PY_CONNECT = (timeout?: number) => [
  'python3',
  '-c',
  `import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2]))${timeout ? `, timeout=${timeout}` : ''})`,
  '{host}',
  '{port}',
];

const only = (r: Result) => {
  if (r.client?.connections.length !== 1) throw new Error(`expected one connection, got ${JSON.stringify(r.client?.connections)}`);
  return r.client.connections[0]!;
};

describe.skipIf(!isRoot)('your own client (netns)', { tags: ['netns'] }, () => {
  test.concurrent("syn-drop, Python with timeout=2: exits non-zero after ~2 s, its own timeout before the kernel's window", async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-drop', client: { argv: PY_CONNECT(2), expect: { exit: 'nonzero', withinMs: 3000 } } });
    expect(r).toPass();
    expect(r.client!.exitCode).toBe(1);
    expect(r.client!.stderrTail).toMatch(/TimeoutError|timed out/);
    const c = only(r);
    expect(c.states.map((s) => s.state)).toEqual(['SYN_SENT']);
    expect(c.endedBy).toBe('client');
    // The kernel's window is the model's (SYN timers at 1024 ms through the wheel: 7.1–7.2 s).
    const [lo, hi] = r.client!.prediction.endsMs!;
    expect(c.explanation).toContain(`the client's own timeout — the kernel would have given up at ${fmtWin([lo, hi])}`);
    expect(lo).toBeGreaterThan(7000);
    // Two seconds of the kernel's schedule: the first SYN retransmission (1 s), not the second (2 s, racing the timeout).
    expect(c.retrans).toBeGreaterThanOrEqual(1);
    expect(r.client!.durationMs).toBeGreaterThanOrEqual(2000);
  });

  test.concurrent("syn-drop, Node's net.connect without a timeout: waits the kernel's whole SYN schedule, then ETIMEDOUT", async ({ harness, expect }) => {
    const js = "const s=require('net').connect(+process.argv[2],process.argv[1]);s.on('error',e=>{console.log(e.code);process.exit(2)})";
    const r = await harness.run({ scenario: 'syn-drop', client: { argv: ['node', '-e', js, '{host}', '{port}'], expect: { exit: 2 } } });
    expect(r).toPass();
    expect(r.client!.stdoutTail.trim()).toBe('ETIMEDOUT');
    const c = only(r);
    expect(c.endedBy).toBe('kernel');
    expect(c.retrans).toBe(r.client!.prediction.retrans);
    expect(c.explanation).toMatch(/^waited the kernel's full schedule: SYN_SENT for 7\.\d s with 5 retransmissions, then GONE \(ETIMEDOUT\)/);
  });

  test.concurrent('reject icmp-host-unreachable: curl (non-blocking connect) fails at once, Python (blocking) one SYN RTO later', async ({ harness, expect }) => {
    const params = { with: 'icmp-host-unreachable' };
    const curl = await harness.run({ scenario: 'reject', params, client: { argv: ['curl', '-sS', 'http://{host}:{port}/'], expect: { exit: 7 } } });
    expect(curl).toPass();
    expect(curl.client!.stderrTail).toMatch(/No route to host|Couldn't connect/);
    expect(curl.client!.durationMs).toBeLessThan(500);
    expect(curl.fault.rulesHit.reject).toBe(1);
    const py = await harness.run({ scenario: 'reject', params, client: { argv: PY_CONNECT(), expect: { exit: 1 } } });
    expect(py).toPass();
    expect(py.client!.stderrTail).toMatch(/No route to host/);
    // The first ICMP lands while connect() holds the socket lock (a soft error); the one answering
    // the SYN retransmission ends it: two SYNs, about one initial RTO.
    expect(py.fault.rulesHit.reject).toBe(2);
    expect(only(py).end.tMs - only(py).states[0]!.tMs).toBeGreaterThan(900);
  });

  test.concurrent('app-crash, Node holding an idle connection: struck when ESTABLISHED, EOF at once', async ({ harness, expect }) => {
    const js = "const s=require('net').connect(+process.argv[2],process.argv[1]);s.on('end',()=>{console.log('EOF');s.end()});s.on('error',e=>{console.log(e.code);process.exit(3)})";
    const r = await harness.run({ scenario: 'app-crash', client: { argv: ['node', '-e', js, '{host}', '{port}'], expect: { exit: 0 } } });
    expect(r).toPass();
    expect(r.client!.stdoutTail.trim()).toBe('EOF');
    expect(r.client!.struck?.why).toMatch(/was ESTABLISHED/);
    expect(r.fault.applied).toContain('kill -SIGKILL server');
    expect(only(r).endedBy).toBe('kernel');
  });

  test.concurrent('host-crash, Python with and without a read timeout: its own 3 s, or the kernel\'s tcp_retries2', async ({ harness, expect }) => {
    const py = (timeout: string) => [
      'python3',
      '-c',
      `import socket,sys,time\ns=socket.create_connection((sys.argv[1], int(sys.argv[2])))\ns.settimeout(${timeout})\ntime.sleep(0.3)\ns.sendall(b'x'*100)\ns.recv(100)`,
      '{host}',
      '{port}',
    ];
    const own = await harness.run({ scenario: 'host-crash', client: { argv: py('3') } });
    expect(own).toPass();
    expect(own.client!.stderrTail).toMatch(/timed out/);
    expect(only(own).endedBy).toBe('client');
    const kernel = await harness.run({ scenario: 'host-crash', client: { argv: py('None') } });
    expect(kernel).toPass();
    expect(kernel.client!.stderrTail).toMatch(/TimeoutError|Connection timed out/);
    expect(only(kernel).endedBy).toBe('kernel');
    expect(kernel.fault.rulesHit['drop-in']).toBeGreaterThanOrEqual(5);
  });

  // Two connections: the first held 300 ms (the strike comes 100 ms into it), then closed; the
  // second opened after the crash, with a 2 s connect timeout.
  const PY_RECONNECT = [
    'python3',
    '-c',
    `import socket,sys,time
a=(sys.argv[1], int(sys.argv[2]))
s=socket.create_connection(a); time.sleep(0.3); s.close()
time.sleep(0.2)
try:
  socket.create_connection(a, timeout=2)
except Exception as e:
  print(type(e).__name__); sys.exit(1)`,
    '{host}',
    '{port}',
  ];

  test.concurrent('host-crash, a client that reconnects after the crash: the new connection waits in SYN_SENT until its own 2 s timeout', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'host-crash', client: { argv: PY_RECONNECT, strike: { kind: 'established', delayMs: 100 }, expect: { exit: 1 } } });
    expect(r).toPass();
    expect(r.client!.stdoutTail.trim()).toBe('TimeoutError');
    expect(r.client!.connections).toHaveLength(2);
    const [first, second] = r.client!.connections;
    expect(first!.endedBy).toBe('client');
    expect(second!.states[0]!.state).toBe('SYN_SENT');
    expect(second!.endedBy).toBe('client');
    // Against the SYN schedule the fault predicts for a reconnect, not against ESTABLISHED.
    const syn = r.client!.prediction.afterStrike!;
    expect(syn.endsMs![0]).toBeGreaterThan(7000);
    expect(second!.explanation).toMatch(/^opened after the strike: gave up after 2\.0 s in SYN_SENT with \d retransmissions?: the client's own timeout/);
    expect(second!.explanation).toContain(`the kernel would have given up at ${fmtWin(syn.endsMs!)}`);
  });

  test.concurrent('reject tcp-reset once established, a client that reconnects: its close meets the RST, its new connect is refused at once', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'reject', params: { with: 'tcp-reset', when: 'established' }, client: { argv: PY_RECONNECT, strike: { kind: 'established', delayMs: 100 }, expect: { exit: 1 } } });
    expect(r).toPass();
    expect(r.client!.stdoutTail.trim()).toBe('ConnectionRefusedError');
    const [, again] = r.client!.connections;
    // Against the connect-time refusal the fault predicts for a connection after the strike.
    expect(r.client!.prediction.afterStrike).toMatchObject({ state: 'SYN_SENT', errno: 'ECONNREFUSED', fleeting: true });
    // Seen only as the kernel freed it, or (a poll in the SYN's few µs) in SYN_SENT: ended at once either way.
    expect(again?.explanation).toMatch(/^opened after the strike: (refused at once|waited the kernel's full schedule: SYN_SENT for \d+ ms with 0 retransmissions, then GONE \(ECONNREFUSED\))/);
    expect(again?.endedBy).toBe('kernel');
  });

  test.concurrent('a mid-connection fault that never struck (the client was done first): the run fails saying so', async ({ harness, expect }) => {
    // The strike would come 5 s after ESTABLISHED; the client is done in about half a second.
    const r = await harness.run({ scenario: 'host-crash', client: { argv: PY_RECONNECT, strike: { kind: 'established', delayMs: 5000 } } });
    expect(r.verdict).toBe('fail');
    expect(r.client!.struck).toBeUndefined();
    const check = r.checks.find((c) => c.name.startsWith('the fault struck'))!;
    expect(check).toMatchObject({ pass: false, expected: 'when a connection of the client is ESTABLISHED (+5000 ms)' });
    expect(check.actual).toMatch(/^never: the client was done after .*--strike at:DURATION/);
    // Everything else held: the checks that failed are that one only.
    expect(r.checks.filter((c) => !c.pass).map((c) => c.name)).toEqual([check.name]);
  });

  test.concurrent('a client that hangs is killed, said so, and everything is reverted', async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-drop', client: { argv: ['sleep', '30'], timeoutMs: 1000 } });
    expect(r.verdict).toBe('fail');
    expect(r.client).toMatchObject({ timedOut: true });
    expect(r.client!.durationMs).toBeLessThan(5000);
    expect(r.checks.find((c) => c.name === 'client ended by itself')).toMatchObject({ pass: false });
    expect(r.revert.failed).toEqual([]);
  });

  test.concurrent("--expect-exit that the client does not meet fails the verdict with its own line", async ({ harness, expect }) => {
    const r = await harness.run({ scenario: 'syn-drop', client: { argv: PY_CONNECT(1), expect: { exit: 0 } } });
    expect(r.verdict).toBe('fail');
    expect(r.checks.filter((c) => !c.pass).map((c) => c.name)).toEqual(['client exit (--expect-exit)']);
  });
});

describe.skipIf(!isRoot || !dockerUp)(`your own client in a container${dockerUp ? '' : ` — skipped: ${dockerSkipReason}`}`, { tags: ['docker'] }, () => {
  test('syn-drop on redis, redis-cli from --client-image: its connection waits the SYN schedule', async ({ harness, expect }) => {
    const r = await harness.run({
      scenario: 'syn-drop',
      target: 'redis',
      client: { argv: ['redis-cli', '-h', '{host}', '-p', '{port}', 'ping'], image: 'harness/redis:local' },
    });
    expect(r).toPass();
    expect(r.client!.stdoutTail + r.client!.stderrTail).toMatch(/Connection timed out/);
    expect(r.client!.connections.length).toBeGreaterThanOrEqual(1);
    for (const c of r.client!.connections) expect(c.endedBy).toBe('kernel');
  });
});
