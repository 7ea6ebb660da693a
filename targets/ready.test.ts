import { describe, expect, test } from 'vitest';
import { ipv4Hex, parseListeners, reachability } from './ready.js';

const head = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const row = (local: string, st: string) => `   0: ${local} 00000000:0000 ${st} 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n`;
const head6 = '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const listen80v6 = '   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n';
const estab80v6 = '   1: 0000000000000000FFFF0000020013C6:0050 0000000000000000FFFF0000030013C6:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n';

describe('listening sockets from /proc/net/tcp{,6}', () => {
  test('an [::] listener on the port is found in tcp6; an established socket or another port is not', () => {
    const l = parseListeners(head6 + listen80v6 + estab80v6, 6);
    expect(l).toEqual([{ family: 6, addrHex: '00000000000000000000000000000000', port: 80 }]);
    expect(l.some((x) => x.port === 6379)).toBe(false);
    expect(parseListeners(head6 + estab80v6, 6)).toEqual([]);
    expect(parseListeners(head6, 6)).toEqual([]);
  });

  test('prints IPv4 as the kernel does (%08X of a __be32 in host order)', () => {
    expect(ipv4Hex('127.0.0.1', 'LE')).toBe('0100007F');
    expect(ipv4Hex('198.19.201.2', 'LE')).toBe('02C913C6');
    expect(ipv4Hex('198.19.201.2', 'BE')).toBe('C613C902');
  });

  test('a client reaches a wildcard, an [::] or a bound-to-its-address listener, not a loopback one', () => {
    const host = '198.19.201.2';
    expect(reachability(parseListeners(head + row('00000000:2328', '0A'), 4), host, 9000, 'LE')).toBe('reachable');
    expect(reachability(parseListeners(head + row('02C913C6:2328', '0A'), 4), host, 9000, 'LE')).toBe('reachable');
    expect(reachability(parseListeners(head6 + listen80v6, 6), host, 80, 'LE')).toBe('reachable');
    expect(reachability(parseListeners(head + row('0100007F:2328', '0A'), 4), host, 9000, 'LE')).toBe('loopback');
    expect(reachability(parseListeners(head + row('00000000:2329', '0A'), 4), host, 9000, 'LE')).toBe('absent');
    expect(reachability(parseListeners(head + row('00000000:2328', '01'), 4), host, 9000, 'LE')).toBe('absent');
  });
});
