/**
 * Packet captures of a namespace (`--pcap DIR`), proven to be running before the client starts:
 * tcpdump's "listening on" line comes before packets reach it, and without immediate mode a
 * TPACKET_V3 ring hands packets over only when a block fills or its timeout passes, so a short
 * scenario could end with an empty file. The capture runs in immediate mode, and the harness
 * sends a marker (a refused connect on the namespace's loopback) and waits until the file holds
 * it. The Result says how many packets of the scenario (loopback excluded) each file holds.
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile, stat, statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UsageError, EnvironmentError } from '../../core/errors.js';
import { inNetns, spawnLong, withTimeout } from '../../core/exec.js';
import { readPcap } from '../../core/pcap-file.js';
import { processStartTicks, type Journal } from '../../core/journal.js';
import type { Netns } from '../../core/netns.js';
import { runProbeClient } from '../../core/probe.js';

/** statfs magic numbers of pseudo file systems a capture can never be written to (linux/magic.h). */
const PSEUDO_FS: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x1cd1: 'devpts',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0xcafe4a11: 'bpf',
  0x73636673: 'securityfs',
};

const FIX = 'give a directory you can write to (it is created if missing)';

/**
 * Checks `--pcap DIR` before anything runs: a directory (or a path whose nearest existing parent
 * is one) on a real file system, writable. Changes nothing. Returns the absolute path. `flag`
 * names the option in the error (`--report DIR` is checked the same way).
 */
export async function checkCaptureDir(raw: string, flag = '--pcap'): Promise<string> {
  if (!raw.trim()) throw new UsageError(flag, 'an empty directory name', FIX);
  const dir = resolve(raw);
  let existing = dir;
  for (;;) {
    const st = await stat(existing).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : e));
    if (st instanceof Error) throw new UsageError(flag, `${existing}: ${st.message}`, FIX);
    if (st) {
      if (!st.isDirectory()) throw new UsageError(flag, `${existing} is not a directory`, FIX);
      break;
    }
    existing = dirname(existing);
  }
  const fs = PSEUDO_FS[(await statfs(existing)).type];
  if (fs) throw new UsageError(flag, `${dir} is on ${fs}, a pseudo file system`, FIX);
  // As root, access(W_OK) still fails on an immutable directory and a read-only mount (EPERM/EROFS).
  await access(existing, constants.W_OK | constants.X_OK).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(flag, `${existing} is not writable (${e.code})`, FIX);
  });
  return dir;
}

export interface CaptureFile {
  side: string;
  file: string;
  /** Packets of the scenario in the file (the loopback marker excluded). */
  packets: number;
}

export interface Capture {
  stop(): Promise<CaptureFile>;
}

/** Starts tcpdump in `ns`, writing `<dir>/<scenario>-<runId>-<side>.pcap`, and proves it captures. */
export async function startCapture(journal: Journal, ns: Netns, dir: string, name: string, side: string, markerPort: number): Promise<Capture> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}-${side}.pcap`);
  const stderr: string[] = [];
  let listening: (() => void) | undefined;
  const ready = new Promise<void>((r) => (listening = r));
  const proc = spawnLong(inNetns(ns, ['tcpdump', '-i', 'any', '-n', '-U', '--immediate-mode', '-s', '256', '-w', file, 'tcp or icmp']), {
    stderr: (l) => {
      stderr.push(l);
      if (/listening on/.test(l)) listening?.();
    },
  });
  const pid = proc.pid;
  if (pid === undefined) throw new EnvironmentError('E_TCPDUMP', 'could not start tcpdump', 'install tcpdump (harness doctor)');
  await journal.record(`tcpdump pid ${pid} in ${ns.name}`, { kind: 'kill', pid, startTicks: (await processStartTicks(pid)) ?? '' });
  const exited = proc.then((r) => {
    throw new EnvironmentError('E_TCPDUMP', `tcpdump in ${ns.name} exited (${r.exitCode ?? r.signal}): ${stderr.join(' ').trim() || 'no message'}`, 'harness doctor');
  });
  exited.catch(() => undefined);
  await Promise.race([withTimeout(ready, 5000, `tcpdump in ${ns.name} did not start: ${stderr.join(' ')}`), exited]);
  // The marker: a connect to a closed port on loopback (SYN, RST), before any rule of the fault.
  await runProbeClient(ns, '127.0.0.1', markerPort, [{ op: 'connect', timeoutMs: 200 }]);
  await Promise.race([withTimeout(waitForPackets(file, 1), 5000, `tcpdump in ${ns.name} captured nothing: ${stderr.join(' ')}`), exited]);
  return {
    async stop() {
      proc.kill('SIGTERM');
      await proc;
      return { side, file, packets: countPackets(await readFile(file), { excludeLoopback: true }) };
    },
  };
}

async function waitForPackets(file: string, n: number): Promise<void> {
  for (;;) {
    const buf = await readFile(file).catch(() => Buffer.alloc(0));
    if (countPackets(buf) >= n) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Counts the IP packets of a classic pcap file (core/pcap-file.ts reads it; a truncated last
 * record is not counted). With `excludeLoopback`, IPv4 packets from or to 127.0.0.0/8 are left
 * out (the capture's marker).
 */
export function countPackets(buf: Buffer, opts: { excludeLoopback?: boolean } = {}): number {
  const loop = (a: string) => a.startsWith('127.');
  return readPcap(buf).filter((p) => !(opts.excludeLoopback && (loop(p.src) || loop(p.dst)))).length;
}
