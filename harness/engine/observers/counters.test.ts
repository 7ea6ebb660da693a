import { describe, expect, it } from 'vitest';
import { counterDelta, parseProcNetCounters } from './counters.js';

describe('/proc/net counters', () => {
  const netstat = [
    'TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows TCPSynRetrans',
    'TcpExt: 0 0 3 5',
    'IpExt: InNoRoutes InOctets',
    'IpExt: 0 1234',
  ].join('\n');
  const snmp = ['Tcp: RtoAlgorithm RtoMin CurrEstab RetransSegs', 'Tcp: 1 200 2 7'].join('\n');

  it('pairs header and value lines into prefixed names', () => {
    expect(parseProcNetCounters(netstat)).toEqual({
      TcpExtSyncookiesSent: 0,
      TcpExtSyncookiesRecv: 0,
      TcpExtListenOverflows: 3,
      TcpExtTCPSynRetrans: 5,
      IpExtInNoRoutes: 0,
      IpExtInOctets: 1234,
    });
    expect(parseProcNetCounters(snmp).TcpRetransSegs).toBe(7);
  });

  it('keeps every counter, zero deltas included, with negative deltas for gauges', () => {
    expect(counterDelta({ A: 1, B: 2, C: 5 }, { A: 1, B: 4, C: 3, D: 1 })).toEqual({ A: 0, B: 2, C: -2, D: 1 });
  });

  it('a counter that did not move is 0, one the kernel does not have is absent', () => {
    const before = { ...parseProcNetCounters(snmp), ...parseProcNetCounters(netstat) };
    const d = counterDelta(before, { ...before, TcpRetransSegs: 9 });
    expect(d.TcpExtListenOverflows).toBe(0);
    expect(d.TcpRetransSegs).toBe(2);
    expect(Object.hasOwn(d, 'TcpExtListenOverflow')).toBe(false);
  });
});
