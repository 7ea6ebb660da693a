import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { checkKeyValue, parseSysctlFlag } from './sysctl.js';

describe('--sysctl parsing', () => {
  it('splits side, key and value', () => {
    expect(parseSysctlFlag('client:net.ipv4.tcp_syn_retries=3')).toEqual({ side: 'client', key: 'net.ipv4.tcp_syn_retries', value: '3' });
    expect(parseSysctlFlag('server:net/ipv4/tcp_synack_retries=1')).toEqual({ side: 'server', key: 'net.ipv4.tcp_synack_retries', value: '1' });
  });
  it('accepts multi-number values, normalising the spacing', () => {
    expect(parseSysctlFlag('client:net.ipv4.ip_local_port_range=40000   40009').value).toBe('40000 40009');
  });
  it.each([
    ['tcp_syn_retries=3', /SIDE:KEY=VALUE/],
    ['both:net.ipv4.tcp_syn_retries=3', /SIDE:KEY=VALUE/],
    ['client:kernel.pid_max=3', /not a network sysctl/],
    ['client:net.ipv4.tcp_syn_retries=abc', /not a number/],
    ['client:net.ipv4.tcp_syn_retries=1;reboot', /not a number/],
    ['client:net.ipv4.tcp_syn_retries=', /not a number/],
  ])('refuses %s with a message naming the flag', (raw, msg) => {
    const err = (() => {
      try {
        parseSysctlFlag(raw);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).flag).toBe('--sysctl');
    expect((err as UsageError).message).toMatch(msg);
    expect((err as UsageError).hint).toBeTruthy();
  });
  it('checks keys and values from config files with the field as the flag', () => {
    expect(() => checkKeyValue('net.ipv4.x', 'y', 'sysctls-from line 3')).toThrow(/sysctls-from line 3/);
  });
});
