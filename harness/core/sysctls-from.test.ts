import { describe, expect, it } from 'vitest';
import { parseSysctlDump, selectSettings } from './sysctls-from.js';

const keys = {
  writable: new Set(['net.ipv4.tcp_syn_retries', 'net.ipv4.tcp_retries2', 'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_congestion_control']),
  readOnly: new Set(['net.core.rmem_max']),
};

describe('--sysctls-from', () => {
  it('reads sysctl -a and sysctl.conf syntax', () => {
    const e = parseSysctlDump('# comment\nnet.ipv4.tcp_syn_retries = 6\nnet/ipv4/tcp_retries2=15\nnet.ipv4.ip_local_port_range = 32768\t60999\n\nkernel.pid_max = 4194304');
    expect(e.map((x) => [x.key, x.value])).toEqual([
      ['net.ipv4.tcp_syn_retries', '6'],
      ['net.ipv4.tcp_retries2', '15'],
      ['net.ipv4.ip_local_port_range', '32768 60999'],
      ['kernel.pid_max', '4194304'],
    ]);
  });

  it('applies TCP settings and reports, never drops silently, what it cannot apply', () => {
    const e = parseSysctlDump(
      'net.ipv4.tcp_syn_retries = 6\nnet.ipv4.tcp_fancy_new = 1\nnet.ipv4.tcp_congestion_control = bbr\nnet.core.rmem_max = 1\nnet.core.somaxconn = 4096\nkernel.pid_max = 1',
    );
    const r = selectSettings(e, keys, 'prod.txt');
    expect(r.applied).toEqual({ 'net.ipv4.tcp_syn_retries': '6' });
    expect(r.skipped).toEqual([
      { key: 'net.ipv4.tcp_fancy_new', value: '1', reason: 'not a sysctl of this kernel' },
      { key: 'net.ipv4.tcp_congestion_control', value: 'bbr', reason: 'not numeric (not modelled)' },
      { key: 'net.core.somaxconn', value: '4096', reason: 'not a sysctl of this kernel' },
    ]);
  });
});
