/**
 * A snapshot of everything the harness could conceivably leave on the machine: the host's
 * iptables ruleset and network sysctls, network namespaces, the state directory, and processes
 * of the probe. Two snapshots must be identical around any run, failed or not.
 */
import { readdir } from 'node:fs/promises';
import { execa } from 'execa';
import { stateDir } from '../../harness/core/journal.js';

export interface HostSnapshot {
  iptables: string;
  sysctls: string;
  netns: string[];
  state: string[];
  probes: number;
}

export async function hostSnapshot(): Promise<HostSnapshot> {
  const ipt = await execa('iptables-save', [], { reject: false });
  const sys = await execa('sysctl', ['-a', '--pattern', '^net\\.(ipv4|core)\\.'], { reject: false });
  const ps = await execa('ps', ['-eo', 'stat=,args='], { reject: false });
  return {
    // Counters change with any traffic; the rules themselves must not.
    iptables: String(ipt.stdout).replace(/\[\d+:\d+\]/g, '').replace(/^#.*$/gm, ''),
    // Keys whose value the kernel changes by itself are left out.
    sysctls: String(sys.stdout)
      .split('\n')
      .filter((l) => !/ip_conntrack|nf_conntrack_count|tcp_mem|udp_mem|netfilter|rt_cache|route\.gc|ipfrag/.test(l))
      .join('\n'),
    netns: (await readdir('/run/netns').catch(() => [] as string[])).filter((n) => n.startsWith('harness')),
    state: await readdir(stateDir()).catch(() => [] as string[]),
    // Live probes only: a killed harness's children are reparented to PID 1, and a zombie left by
    // an init that does not reap holds no socket, namespace or rule.
    probes: String(ps.stdout)
      .split('\n')
      .filter((l) => l.includes('harness-probe') && !/^Z/.test(l.trim())).length,
  };
}
