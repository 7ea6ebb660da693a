import { describe, expect, it } from 'vitest';
import { bufferSysctlsFrom, countBy, lockedSndbuf, predictFill, predictKeepaliveAnswered, predictZeroWindowUserTimeout, rcvWscale, SOCK_MIN_SNDBUF, TCP_ATO_MIN_MS, TCP_DELACK_MAX_MS, zeroWindowSchedule } from './hang.js';
import { TCP_RTO_MAX_MS } from './tcp.js';
import { timerSlackMs } from './timer-wheel.js';

const clock = { hz: 250 };
const MSS = 1448;
/** A fresh namespace on 6.18: tcp_rmem 4096 131072 33554432, rmem_max/wmem_max 4 MiB here. */
const fresh = bufferSysctlsFrom({ 'net.core.wmem_max': '4194304' }, { 'net.ipv4.tcp_rmem': '4096 131072 33554432', 'net.core.rmem_max': '4194304' });

/**
 * Measured on 6.18 (HZ=250, veth; `harness run app-hang --set sndbuf=… --sysctl
 * server:net.ipv4.tcp_rmem=…`): bytes write() took before EAGAIN for good, what the server's
 * kernel acknowledged (tcpi_bytes_acked − 1) and the client's unsent queue (tcpi_notsent_bytes),
 * by tcp_rmem[1] and SO_SNDBUF. A queue of 21720 B behind a 32 KiB send buffer is why the lower
 * bound is two thirds of it: the writer is only woken below that.
 */
const MEASURED = [
  { rmem1: 65536, so: 16384, written: 82848, accepted: 61128, queued: 21720 },
  { rmem1: 65536, so: 65536, written: 169304, accepted: 60704, queued: 108600 },
  { rmem1: 65536, so: 262144, written: 538544, accepted: 60704, queued: 477840 },
  { rmem1: 131072, so: 16384, written: 153488, accepted: 127032, queued: 26456 },
  { rmem1: 131072, so: 65536, written: 285312, accepted: 127480, queued: 157832 },
  { rmem1: 131072, so: 262144, written: 578128, accepted: 127480, queued: 450648 },
  { rmem1: 262144, so: 16384, written: 323088, accepted: 257928, queued: 65160 },
  { rmem1: 262144, so: 65536, written: 387080, accepted: 256760, queued: 130320 },
  { rmem1: 262144, so: 262144, written: 682760, accepted: 256760, queued: 426000 },
];

const within = (x: number, [lo, hi]: [number, number]) => x >= lo && x <= hi;

describe('a writer against a frozen reader: how much write() takes', () => {
  it('the buffers: tcp_rmem[1] on the frozen side, 2 × SO_SNDBUF (capped by wmem_max, at least SOCK_MIN_SNDBUF) on the writer', () => {
    expect(predictFill(fresh, 65536, MSS)).toMatchObject({ rcvbufBytes: 131072, sndbufBytes: 131072, nominalBytes: 262144 });
    expect(lockedSndbuf(1 << 30, fresh)).toBe(2 * 4194304);
    expect(lockedSndbuf(1024, fresh)).toBe(SOCK_MIN_SNDBUF);
    // 32 MiB announced needs a window scale of 10: the rounding unit of the right edge.
    expect(rcvWscale(fresh)).toBe(10);
  });

  it.each(MEASURED)('tcp_rmem[1] $rmem1, SO_SNDBUF $so: measured $written B inside the model', (m) => {
    const b = bufferSysctlsFrom({ 'net.core.wmem_max': '4194304' }, { 'net.ipv4.tcp_rmem': `4096 ${m.rmem1} 33554432`, 'net.core.rmem_max': '4194304' });
    const p = predictFill(b, m.so, MSS);
    expect(m.accepted + m.queued).toBe(m.written);
    expect(within(m.accepted, p.acceptedBytes)).toBe(true);
    expect(within(m.queued, p.queuedBytes)).toBe(true);
    expect(within(m.written, p.writtenBytes)).toBe(true);
  });

  it('bounds by the rules: the receiver at most its buffer, at least 15/16 of it; the writer at least 2/3 of its buffer, at most one skb more', () => {
    const p = predictFill(fresh, 65536, MSS);
    expect(p.acceptedBytes).toEqual([(131072 * 15) / 16 - 4 * MSS, 131072 + 1024]);
    // The size goal: half the largest window offered (64 KiB here), in whole MSS.
    expect(p.queuedBytes).toEqual([Math.floor((131072 * 2) / 3) - 4 * MSS, 131072 + 45 * MSS]);
  });
});

describe('the persist timer against a closed window', () => {
  const s = zeroWindowSchedule(200_000, TCP_RTO_MAX_MS, clock);

  it('probe0 base: the handshake RTO (51 jiffies) up to rto_min + TCP_ATO_MIN; the window closes by TCP_DELACK_MAX', () => {
    expect(s.baseMs).toEqual([204, 200 + TCP_ATO_MIN_MS + 4]);
    expect(s.closedByMs).toEqual([0, TCP_DELACK_MAX_MS + 8]);
  });

  it('probes double: measured on 6.18 at 216, 652, 1516 ms after the closing ACK (base 212)', () => {
    const measured = [216, 652, 1516].map((t) => t + 90); // the closing ACK came 90 ms after the first write
    measured.forEach((t, i) => expect(within(t, s.probeAtMs(i + 1))).toBe(true));
    expect(countBy((k) => s.probeAtMs(k), 3000, 3012)).toEqual([3, 3]);
  });

  it('TCP_USER_TIMEOUT 2000: measured ETIMEDOUT 2308 and 2325 ms after the first write, after 3 answered probes', () => {
    const u = predictZeroWindowUserTimeout(2000, s, clock);
    expect(u.probes).toEqual([3, 3]);
    expect(within(2308, u.windowMs)).toBe(true);
    expect(within(2325, u.windowMs)).toBe(true);
    // Never before the first probe's base plus the user timeout; the latest adds the slack of both timers.
    expect(u.windowMs[0]).toBe(204 - 4 + 2000);
    expect(u.windowMs[1]).toBe(TCP_DELACK_MAX_MS + 8 + 244 + timerSlackMs(244, clock) + 2000 + timerSlackMs(2000, clock) + 8);
  });

  it('a user timeout shorter than the second probe interval: only the first probe', () => {
    expect(predictZeroWindowUserTimeout(300, s, clock).probes).toEqual([1, 1]);
  });
});

describe('keepalive against a kernel that answers', () => {
  it('idle 1 s, interval 1 s, count 3: 5 probes in 5.5 s, more than the 3 that would drop an unanswered connection', () => {
    const k = predictKeepaliveAnswered(1, 1, 3, 5500, clock);
    expect(k.probes).toEqual([5, 5]);
    expect(k.probes[0]).toBeGreaterThan(3);
  });

  it('an interval shorter than idle: the next probe waits for idle since the last answer', () => {
    expect(predictKeepaliveAnswered(2, 1, 3, 6500, clock).probes).toEqual([3, 3]);
  });
});
