import { describe, expect, it } from 'vitest';
import { acceptQueueFull, LATE_PORT, listenBacklog, MAX_PROBE_SOCKETS } from './accept-queue-full.js';
import { planRules } from './iptables.js';
import { faultContext } from './context.js';
import { answeredWindowMs } from '../harness/model/handshake.js';
import { modelTimeoutMs, TCP_RTO_MAX_MS, TCP_TIMEOUT_INIT_MS, wakeupSlackMs } from '../harness/model/tcp.js';
import { chainWindowMs } from '../harness/model/timer-wheel.js';

/**
 * A dropped connect at tcp_syn_retries=1 with 4 linear timeouts, by hand: SYNs 1 s apart (linear),
 * the connect expires at the first firing at least tcp_model_timeout(1, TCP_TIMEOUT_INIT) = 3 s
 * after the first SYN: retransmissions at 1 and 2 s, ETIMEDOUT at 3 s.
 */
const clock = { hz: 250 };
const SYN_RETRANSMITS = 2;
const SYNS = 1 + SYN_RETRANSMITS;
const synChain = Array.from({ length: SYN_RETRANSMITS + 1 }, () => TCP_TIMEOUT_INIT_MS);

const ctx = (raw: Record<string, unknown> = {}, server: Record<string, string> = {}) =>
  faultContext(acceptQueueFull, {
    params: raw,
    sysctls: {
      client: { 'net.ipv4.tcp_syn_retries': '1', 'net.ipv4.tcp_syn_linear_timeouts': '4', 'net.ipv4.tcp_rto_max_ms': '120000' },
      server: { 'net.ipv4.tcp_abort_on_overflow': '0', 'net.core.somaxconn': '4096', ...server },
    },
  });

describe('accept-queue-full', () => {
  it('asks for a no-accept server with the backlog', () => {
    expect(acceptQueueFull.server(acceptQueueFull.params.parse({ backlog: '2' }))).toEqual({ mode: 'no-accept', backlog: 2 });
  });

  it('overflow at the SYN: backlog + 1 connects complete, the next times out; no rule', () => {
    const c = ctx();
    expect(acceptQueueFull.plan(c)).toEqual({});
    const e = acceptQueueFull.expect(c);
    expect(Object.keys(e.steps)).toEqual(['connect-0', 'connect-1', 'connect-2']);
    expect(e.steps['connect-1']).toMatchObject({ ok: true });
    expect(synChain.reduce((a, b) => a + b)).toBe(modelTimeoutMs(1, TCP_TIMEOUT_INIT_MS, TCP_RTO_MAX_MS));
    const [lo, hi] = chainWindowMs(synChain, clock);
    expect(e.steps['connect-2']).toMatchObject({ errno: 'ETIMEDOUT', totalRetrans: SYN_RETRANSMITS, windowMs: [lo, hi + wakeupSlackMs(clock)] });
    // Every SYN of the one dropped connect overflows the accept queue.
    expect(e.counters?.server).toMatchObject({ TcpExtListenOverflows: SYNS, TcpExtListenDrops: SYNS });
    expect(e.listen).toEqual({ server: { rqMax: 2, wq: 1 } });
    const script = acceptQueueFull.script(c, e);
    expect(script.map((s) => s.sock)).toEqual([0, 1, 2]);
    // The step timeout: the window's end plus one second.
    expect(script[2]).toMatchObject({ op: 'connect', timeoutMs: Math.ceil(hi + wakeupSlackMs(clock)) + 1000 });
  });

  it('follows the backlog and the number of connects', () => {
    const e = acceptQueueFull.expect(ctx({ backlog: '2', connects: '5' }));
    expect(Object.values(e.steps).map((s) => s.ok)).toEqual([true, true, true, false, false]);
    expect(e.counters?.server).toMatchObject({ TcpExtListenOverflows: 2 * SYNS });
    expect(e.listen?.server).toEqual({ rqMax: 3, wq: 2 });
  });

  it('caps the backlog at somaxconn (in force before the server listens)', () => {
    const e = acceptQueueFull.expect(ctx({ backlog: '2' }, { 'net.core.somaxconn': '1' }));
    expect(e.listen?.server).toEqual({ rqMax: 2, wq: 1 });
    expect(e.because?.join(' ')).toMatch(/somaxconn 1: sk_max_ack_backlog 1/);
  });

  it('overflow at the ACK: holds the late connection\'s bare ACK in the client namespace', () => {
    const c = ctx({ overflow: 'ack' });
    const steps = planRules('abc123', acceptQueueFull.plan(c).rules ?? []);
    expect(steps[1]!.side).toBe('client');
    expect(steps[1]!.apply).toEqual([
      'iptables', '-w', '5', '-A', 'harness-abc123-out',
      '-p', 'tcp', '--sport', String(LATE_PORT), '--dport', '9000', '--tcp-flags', 'ALL', 'ACK',
      '-m', 'comment', '--comment', 'harness:abc123:hold-ack', '-j', 'DROP',
    ]);
    const script = acceptQueueFull.script(c, acceptQueueFull.expect(c));
    expect(script.find((s) => s.label === 'connect-late')).toMatchObject({ bindPort: LATE_PORT, sock: 1 });
  });

  it('tcp_abort_on_overflow decides between a hang and a reset at the ACK', () => {
    expect(acceptQueueFull.expect(ctx({ overflow: 'ack' })).steps['read-late']).toMatchObject({ timedOut: true });
    const e = acceptQueueFull.expect(ctx({ overflow: 'ack' }, { 'net.ipv4.tcp_abort_on_overflow': '1' }));
    expect(e.steps['read-late']).toMatchObject({ errno: 'ECONNRESET', windowMs: answeredWindowMs({ hz: 250 }) });
    // The late data segment once, then every SYN of the dropped connect.
    expect(e.counters?.server).toMatchObject({ TcpExtListenOverflows: 1 + SYNS, TcpExtEmbryonicRsts: 1, TcpOutRsts: 1 });
  });

  it('validates its parameters', () => {
    expect(acceptQueueFull.params.safeParse({ backlog: '-1' }).success).toBe(false);
    expect(acceptQueueFull.params.safeParse({ overflow: 'fin' }).success).toBe(false);
  });

  it('overflow=cookie: half-opens fill the SYN queue, cookie connects fill the accept queue, the late data is validated then dropped — the same whatever tcp_abort_on_overflow says', () => {
    for (const abort of ['0', '1']) {
      const c = ctx({ overflow: 'cookie', backlog: '2' }, { 'net.ipv4.tcp_abort_on_overflow': abort, 'net.ipv4.tcp_syncookies': '1' });
      const e = acceptQueueFull.expect(c);
      // The SYN queue stores backlog + 1 (inet_csk_reqsk_queue_is_full is qlen > backlog); the accept queue holds backlog + 1 too.
      expect(Object.keys(e.steps).filter((k) => k.startsWith('half-open'))).toHaveLength(3);
      expect(Object.keys(e.steps).filter((k) => k.startsWith('connect-filler'))).toHaveLength(3);
      expect(e.steps['connect-late']).toMatchObject({ ok: true, windowMs: answeredWindowMs(clock) });
      expect(e.steps['read-late']).toEqual({ ok: false, timedOut: true, errno: null });
      expect(e.steps['connect-dropped']).toMatchObject({ errno: 'ETIMEDOUT', totalRetrans: SYN_RETRANSMITS });
      expect(e.counters!.server).toMatchObject({
        TcpExtSyncookiesSent: 1 + 3,
        TcpExtSyncookiesRecv: { min: 3 + 1 },
        TcpExtListenOverflows: { min: 1 + SYNS },
        TcpOutRsts: 0,
        TcpPassiveOpens: 3,
      });
      expect(e.rulesHit).toMatchObject({ 'hold-ack': 1, 'half-open-0': { min: 2 } });
      const rules = acceptQueueFull.plan(c).rules!;
      expect(rules.map((r) => r.name)).toEqual(['half-open-0', 'half-open-1', 'half-open-2', 'hold-ack']);
      const script = acceptQueueFull.script(c, e).map((st) => st.label);
      expect(script).toEqual(['half-open-0', 'half-open-1', 'half-open-2', 'connect-late', 'connect-filler-0', 'connect-filler-1', 'connect-filler-2', 'write-late', 'read-late', 'connect-dropped']);
    }
  });
  it('overflow=cookie with tcp_syncookies=2: no half-opens needed, every SYN is answered with a cookie', () => {
    const e = acceptQueueFull.expect(ctx({ overflow: 'cookie' }, { 'net.ipv4.tcp_syncookies': '2' }));
    expect(Object.keys(e.steps).some((k) => k.startsWith('half-open'))).toBe(false);
    expect(e.counters!.server).toMatchObject({ TcpExtSyncookiesSent: 1 + 2, TcpExtTCPReqQFullDoCookies: 1 + 2 + SYNS });
  });
  it('overflow=cookie with cookies off: the late SYN meets a full SYN queue and is dropped — nothing to overflow', () => {
    const e = acceptQueueFull.expect(ctx({ overflow: 'cookie' }, { 'net.ipv4.tcp_syncookies': '0' }));
    expect(e.steps['connect-late']).toMatchObject({ errno: 'ETIMEDOUT' });
    expect(e.steps['write-late']).toBeUndefined();
  });
});

describe('accept-queue-full on a server of its own', () => {
  const own = (backlog: number, somaxconn = '4096') =>
    faultContext(acceptQueueFull, {
      sysctls: { client: { 'net.ipv4.tcp_syn_retries': '1', 'net.ipv4.tcp_syn_linear_timeouts': '4' }, server: { 'net.core.somaxconn': somaxconn } },
      server: { listener: { local: '0.0.0.0:80', backlog, queued: 0 } },
    });

  it('is frozen, and the model fills the backlog it chose (nginx: 511): 512 connects fit, the 513th SYN is dropped', () => {
    const c = own(511);
    expect(acceptQueueFull.plan(c)).toEqual({ freeze: true });
    expect(listenBacklog(c)).toMatchObject({ maxAck: 511, local: '0.0.0.0:80' });
    const e = acceptQueueFull.expect(c);
    expect(Object.keys(e.steps)).toHaveLength(513);
    expect(e.steps['connect-511']).toMatchObject({ ok: true });
    expect(e.steps['connect-512']).toMatchObject({ errno: 'ETIMEDOUT' });
    expect(e.listen).toEqual({ server: { rqMax: 512, wq: 511, local: '0.0.0.0:80' } });
    expect(e.counters?.server).toMatchObject({ TcpPassiveOpens: 512 });
    expect(acceptQueueFull.script(c, e).at(-1)).toMatchObject({ op: 'connect', sock: 512 });
  });

  it('the built-in no-accept server is not frozen: it never accepts anyway', () => {
    expect(acceptQueueFull.plan(ctx())).toEqual({});
    expect(acceptQueueFull.plan(ctx({ overflow: 'ack' }))).not.toHaveProperty('freeze');
  });

  it('a backlog the probe cannot fill is an error that says how to cap it', () => {
    const e = (() => {
      try {
        acceptQueueFull.expect(own(MAX_PROBE_SOCKETS, String(MAX_PROBE_SOCKETS)));
      } catch (x) {
        return x as Error & { hint?: string };
      }
    })();
    expect(e?.message).toMatch(/backlog 8192: filling its accept queue takes 8194 connections, more than the probe holds/);
    expect(e?.hint).toBe('cap it for the run: --sysctl server:net.core.somaxconn=N');
  });
});
