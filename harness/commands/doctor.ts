/** `harness doctor`: what this machine is missing to run the harness, and how to get it. */
import { existsSync } from 'node:fs';
import { run } from '../core/exec.js';
import { kernelFacts } from '../core/kernel.js';
import { checkMechanism, MECHANISMS } from '../core/mechanisms.js';
import { probePath } from '../core/probe.js';
import { packageRoot, PROBE_APT, PROBE_DEBIAN_PACKAGES, probeBuildHint } from '../core/probe-install.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** Needed by every scenario (false: only by some, e.g. Docker for container targets). */
  required: boolean;
}

async function has(argv: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run(argv, { reject: false, timeoutMs: 10_000 });
    return { ok: !r.failed, out: (r.stdout || r.stderr).trim().split('\n')[0] ?? '' };
  } catch (e) {
    return { ok: false, out: e instanceof Error ? e.message : String(e) };
  }
}

const APT = 'apt-get install -y';

/** The Debian packages (of PROBE_DEBIAN_PACKAGES) that building the probe lacks here. */
async function missingBuildPackages(): Promise<string[]> {
  const missing: string[] = [];
  if (!(await has(['cc', '--version'])).ok) missing.push('gcc');
  if (!(await has(['make', '--version'])).ok) missing.push('make');
  if (!existsSync('/usr/include/stdio.h')) missing.push('libc6-dev');
  if (!existsSync('/usr/include/linux/inet_diag.h')) missing.push('linux-libc-dev');
  return missing;
}

export async function doctorChecks(): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const add = (name: string, ok: boolean, detail: string, fix: string, required = true) => checks.push({ name, ok, detail, required, ...(ok ? {} : { fix }) });
  const major = Number(process.versions.node.split('.')[0]);
  add('node >= 20', major >= 20, `node ${process.versions.node}`, 'install Node.js 20 or newer');
  add('root', process.getuid?.() === 0, `uid ${process.getuid?.()}`, 'run as root (sudo): namespaces and iptables need it');
  const ip = await has(['ip', '-V']);
  add('iproute2 (ip netns)', ip.ok, ip.out, `${APT} iproute2`);
  const ul = await has(['nsenter', '--version']);
  add('util-linux (nsenter, unshare)', ul.ok, ul.out, `${APT} util-linux`);
  const sc = await has(['sysctl', '--version']);
  add('procps (sysctl)', sc.ok, sc.out, `${APT} procps`);
  const ipt = await has(['iptables', '--version']);
  add('iptables', ipt.ok, ipt.out, `${APT} iptables`);
  if (ipt.ok) {
    // In a throwaway namespace, so the check itself touches nothing of the host's.
    const inNs = await has(['unshare', '--net', '--', 'iptables', '-w', '5', '-L', 'INPUT', '-n']);
    add('iptables works in a namespace', inNs.ok, inNs.ok ? 'ok' : inNs.out, 'load the nf_tables / ip_tables kernel modules (modprobe nf_tables)');
  }
  const td = await has(['tcpdump', '--version']);
  add('tcpdump (for --pcap)', td.ok, td.out, `${APT} tcpdump`, false);
  // The probe: built by npm's install script (an installed package) or `npm run build` (a checkout).
  let probe = '';
  try {
    probe = probePath();
  } catch {
    /* reported below */
  }
  const probeRuns = probe ? await has([probe, '--version']) : { ok: false, out: '' };
  const root = packageRoot();
  add('native probe', probeRuns.ok, probe ? (probeRuns.ok ? probe : `${probe} does not run: ${probeRuns.out}`) : `not built (no ${root}/probe/build/harness-probe)`, probeBuildHint(root));
  // Needed to build the probe; with a built one, only to rebuild it (and for `harness images build`).
  const missing = await missingBuildPackages();
  add('C toolchain (builds the probe)', missing.length === 0, missing.length ? `missing: ${missing.join(', ')}` : PROBE_DEBIAN_PACKAGES.join(', '), PROBE_APT, !probeRuns.ok);
  // What latency, bandwidth and loss need beyond plain iptables, proven in a throwaway namespace.
  if (ipt.ok) {
    for (const m of MECHANISMS) {
      const c = await checkMechanism(m);
      add(c.what, c.ok, c.detail, c.fix, false);
    }
  }
  const k = await kernelFacts();
  add('kernel HZ known', k.hzSource !== 'assumed', `${k.release}, HZ=${k.hz} from ${k.hzSource}`, 'expose /proc/config.gz (CONFIG_IKCONFIG_PROC) or /boot/config-$(uname -r); windows assume HZ=100 meanwhile', false);
  const dk = await has(['docker', 'info', '--format', '{{.ServerVersion}}']);
  add('docker engine (container targets)', dk.ok, dk.ok ? `server ${dk.out}` : dk.out, 'bash scripts/docker-setup.sh (installs docker.io and starts dockerd)', false);
  if (dk.ok) {
    const { images, imageOrder } = await import('../../docker/images.js');
    const missing: string[] = [];
    for (const k of imageOrder) if (!(await has(['docker', 'image', 'inspect', '--format', '{{.Id}}', images[k].name])).ok) missing.push(images[k].name);
    add('harness images (nginx, redis, probe targets)', missing.length === 0, missing.length ? `missing: ${missing.join(', ')}` : imageOrder.map((k) => images[k].name).join(', '), 'harness images build (or npm run images)', false);
  }
  // Ryuk (testcontainers' reaper) would have to be pulled: the harness disables it unless told otherwise.
  const ryuk = process.env.TESTCONTAINERS_RYUK_DISABLED;
  add('testcontainers without Ryuk', ryuk === undefined || ryuk === 'true', ryuk === undefined ? 'TESTCONTAINERS_RYUK_DISABLED unset: the harness sets it to true (it reaps by label: harness gc)' : `TESTCONTAINERS_RYUK_DISABLED=${ryuk}`, 'unset TESTCONTAINERS_RYUK_DISABLED (or set it to true): Ryuk cannot be pulled without a registry', false);
  return checks;
}

export function formatDoctor(checks: DoctorCheck[]): string {
  return (
    checks
      .map((c) => `${c.ok ? '✓' : c.required ? '✗' : '-'} ${c.name.padEnd(36)} ${c.detail}${c.fix ? `\n    fix: ${c.fix}` : ''}`)
      .join('\n') + '\n'
  );
}
