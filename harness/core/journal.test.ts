import { spawn } from 'node:child_process';
import { chmod, lstat, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupMembers, stopGroup } from './freeze.js';
import { Journal, JournalRefused, processStartTicks, scanJournals, type JournalFile } from './journal.js';
import { silentLogger } from './log.js';

// Captured once: a journal points TMPDIR at its private dir while it is open.
const BASE = tmpdir();
let dir: string;
let open: Journal[] = [];

async function create(runId = 'abc123'): Promise<Journal> {
  const j = await Journal.create(runId, silentLogger);
  open.push(j);
  return j;
}

beforeEach(async () => {
  dir = await mkdtemp(join(BASE, 'journal-'));
  process.env.HARNESS_STATE_DIR = dir;
});
afterEach(async () => {
  for (const j of open) await j.revertAll();
  open = [];
  delete process.env.HARNESS_STATE_DIR;
  await rm(dir, { recursive: true, force: true });
});

describe('journal', () => {
  it('writes the revert to disk before the change runs', async () => {
    const j = await create();
    let seenOnDisk = 0;
    await j.change('touch', { kind: 'argv', argv: ['true'] }, async () => {
      seenOnDisk = JSON.parse(await readFile(j.path, 'utf8')).entries.length;
    });
    expect(seenOnDisk).toBe(1);
  });

  it('reverts newest first, carries on past a failure, reports it, and keeps the file', async () => {
    const j = await create();
    const file = join(dir, 'order');
    await j.record('first', { kind: 'argv', argv: ['sh', '-c', `echo first >> ${file}`] });
    await j.record('broken', { kind: 'argv', argv: ['false'] });
    await j.record('last', { kind: 'argv', argv: ['sh', '-c', `echo last >> ${file}`] });
    const r = await j.revertAll();
    expect((await readFile(file, 'utf8')).trim().split('\n')).toEqual(['last', 'first']);
    expect(r.reverted).toBe(2);
    expect(r.failed.map((f) => f.describe)).toEqual(['broken']);
    expect(await readdir(dir)).toContain('abc123.json');
  });

  it('can run twice: the second time does nothing and removes the file', async () => {
    const j = await create();
    await j.record('once', { kind: 'argv', argv: ['true'] });
    expect((await j.revertAll()).reverted).toBe(1);
    expect((await j.revertAll()).reverted).toBe(0);
    expect(await readdir(dir)).not.toContain('abc123.json');
  });

  it('treats "already gone" as undone', async () => {
    const j = await create();
    await j.record('gone', { kind: 'argv', argv: ['sh', '-c', 'echo "Bad rule (does a matching rule exist in that chain?)" >&2; exit 1'], absent: 'does a matching rule exist' });
    await j.record('netns gone', { kind: 'argv', argv: ['false'], netnsPath: join(dir, 'no-such-netns') });
    expect((await j.revertAll()).failed).toEqual([]);
  });

  it('runs a revert again when a signal killed it (a Ctrl-C in the moment between fork and setsid)', async () => {
    const j = await create();
    const once = join(dir, 'interrupted-once');
    const done = join(dir, 'done');
    await j.record('interrupted the first time', { kind: 'argv', argv: ['sh', '-c', `if [ ! -e ${once} ]; then touch ${once}; kill -INT $$; fi; touch ${done}`] });
    expect((await j.revertAll()).failed).toEqual([]);
    expect(await readFile(done, 'utf8')).toBe('');
  });

  it('leaves no temp file behind, and names it after its writer while it exists', async () => {
    const j = await create();
    await j.record('x', { kind: 'argv', argv: ['true'] });
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('kill entries', () => {
  async function sleeper(): Promise<{ pid: number; ticks: string; alive: () => boolean }> {
    const p = spawn('sleep', ['30'], { stdio: 'ignore' });
    let exited = false;
    p.on('exit', () => (exited = true));
    const ticks = await processStartTicks(p.pid!);
    return { pid: p.pid!, ticks: ticks!, alive: () => !exited };
  }

  it('kill only the process that started at the recorded time', async () => {
    const s = await sleeper();
    const j = await create();
    await j.record('someone who reused the pid', { kind: 'kill', pid: s.pid, startTicks: String(Number(s.ticks) + 1) });
    await j.revertAll();
    expect(s.alive()).toBe(true);
    const k = await create('abc124');
    await k.record('the sleeper', { kind: 'kill', pid: s.pid, startTicks: s.ticks });
    await k.revertAll();
    await new Promise((r) => setTimeout(r, 50));
    expect(s.alive()).toBe(false);
  });

  it('a kill without a start time is not even recorded (nothing could check the pid)', async () => {
    const s = await sleeper();
    const j = await create();
    await j.record('no start time', { kind: 'kill', pid: s.pid, startTicks: '' });
    expect(j.pending).toEqual([]);
    await j.revertAll();
    expect(s.alive()).toBe(true);
    process.kill(s.pid, 'SIGKILL');
  });
});

describe('thaw entries (a frozen server)', () => {
  async function stoppedGroup(): Promise<{ pid: number; ticks: string; state: () => Promise<string>; end: () => void }> {
    // A group leader with a child, both stopped, as targets/freeze stops a server and its workers.
    const p = spawn('sh', ['-c', 'sleep 30 & wait'], { stdio: 'ignore', detached: true });
    const ticks = (await processStartTicks(p.pid!))!;
    await new Promise((r) => setTimeout(r, 50));
    const outcome = await stopGroup(p.pid!, ticks);
    expect(outcome).toMatchObject({ ok: true, members: 2 });
    return {
      pid: p.pid!,
      ticks,
      state: async () => (await groupMembers(p.pid!)).map((m) => m.state).sort().join(''),
      end: () => process.kill(-p.pid!, 'SIGKILL'),
    };
  }

  it('the revert sends SIGCONT to the whole group, and may run twice', async () => {
    const g = await stoppedGroup();
    try {
      expect(await g.state()).toBe('TT');
      const j = await create();
      await j.record('freeze', { kind: 'thaw', pid: g.pid, startTicks: g.ticks });
      expect((await j.revertAll()).failed).toEqual([]);
      await new Promise((r) => setTimeout(r, 20));
      expect(await g.state()).not.toMatch(/T/);
    } finally {
      g.end();
    }
  });

  it('does not touch a group whose leader\'s pid now has another start time (a reused pid)', async () => {
    const g = await stoppedGroup();
    try {
      const j = await create();
      await j.record('someone else', { kind: 'thaw', pid: g.pid, startTicks: String(Number(g.ticks) + 1) });
      await j.revertAll();
      expect(await g.state()).toBe('TT');
    } finally {
      g.end();
    }
  });

  it('a freeze of a process that is gone says so and stops nothing', async () => {
    expect(await stopGroup(4_194_000, '1')).toEqual({ ok: false, why: 'its process (pid 4194000) is gone' });
  });
});

describe('namespace markers', () => {
  it('a namespace of the harness is marked before it is made, and unmarked once deleted', async () => {
    const j = await create();
    await j.record('network namespace harness-abc123-t', { kind: 'netns', name: 'harness-abc123-t' });
    const marker = join(dir, 'ns', 'harness-abc123-t');
    expect(await readFile(marker, 'utf8')).toBe('abc123\n');
    expect((await lstat(marker)).mode & 0o777).toBe(0o600);
    await j.revertAll(); // the namespace never existed: its delete is a no-op, the marker goes
    expect(await readdir(join(dir, 'ns'))).toEqual([]);
  });
});

describe('private temp dir', () => {
  it('points TMPDIR at a 0700 dir in the state dir while runs are in flight, shared, then removes it', async () => {
    const before = process.env.TMPDIR;
    const a = await create('abc123');
    const b = await create('abc124');
    const priv = process.env.TMPDIR!;
    expect(priv.startsWith(join(dir, 'tmp', `${process.pid}-`))).toBe(true);
    expect(tmpdir()).toBe(priv);
    expect((await lstat(priv)).mode & 0o777).toBe(0o700);
    await a.revertAll();
    expect(process.env.TMPDIR).toBe(priv); // b still runs
    await b.revertAll();
    expect(process.env.TMPDIR).toBe(before);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });
});

describe('state directory', () => {
  it('refuses a state directory others can write, naming it and the fix', async () => {
    await chmod(dir, 0o777);
    const e = await Journal.create('abc123', silentLogger).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'E_STATE_DIR', exitCode: 3 });
    expect((e as Error).message).toContain(`${dir} is writable by everyone`);
    expect((e as { hint: string }).hint).toContain(`chmod go-w ${dir}`);
  });
});

describe('reading a journal back (harness gc)', () => {
  const base = (entries: unknown[], runId = 'abc123'): JournalFile =>
    ({ version: 1, runId, pid: 999999, startTicks: '1', startedAt: '2026-01-01T00:00:00Z', entries }) as JournalFile;
  const write = async (f: unknown, name = 'abc123.json', mode = 0o600) => {
    const path = join(dir, name);
    await writeFile(path, JSON.stringify(f), { mode });
    await chmod(path, mode);
    return path;
  };
  const ns = '/run/netns/harness-abc123-t';
  const ok = { seq: 0, describe: 'x', done: false };

  it.each([
    ['a shell command', { kind: 'argv', argv: ['sh', '-c', 'rm -rf /'], netnsPath: ns }, /argv must start with: nsenter/],
    ['a command the harness never reverts with', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'rm', '-rf', '/'], netnsPath: ns }, /command "rm"/],
    ['iptables flushing everything', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'iptables', '-w', '5', '-F'], netnsPath: ns }, /iptables -w N -D\|-X/],
    ['iptables deleting a rule of someone else', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'iptables', '-w', '5', '-D', 'INPUT', '-j', 'ACCEPT'], netnsPath: ns }, /without run abc123's comment/],
    ['another run\'s namespace', { kind: 'argv', argv: ['nsenter', '--net=/run/netns/harness-zzz999-t', '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_syn_retries=6'], netnsPath: '/run/netns/harness-zzz999-t' }, /neither one of run abc123's/],
    ['the host namespace', { kind: 'argv', argv: ['nsenter', '--net=/proc/1/ns/net/../../self/ns/net', '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_syn_retries=6'], netnsPath: '/proc/1/ns/net/../../self/ns/net' }, /neither one of run/],
    ['a non-numeric sysctl', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'sysctl', '-q', '-w', 'kernel.core_pattern=|/tmp/x'], netnsPath: ns }, /not a net\.\* key/],
    ['no namespace named', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_syn_retries=6'] }, /netnsPath/],
    ['a namespace not of this run', { kind: 'netns', name: 'harness-notours' }, /not one of run abc123's/],
    ['a container not of this run', { kind: 'docker', object: 'container', id: 'my-database' }, /not one of run abc123's/],
    ['a kill with no start time', { kind: 'kill', pid: 1234, startTicks: '' }, /start time/],
    ['a thaw with no start time', { kind: 'thaw', pid: 1234, startTicks: '' }, /start time/],
    ['an unpause of a container not of this run', { kind: 'docker', object: 'container', id: 'my-database', op: 'unpause' }, /only run abc123's target container/],
    ['an unpause of the run\'s holder (only the target is ever paused)', { kind: 'docker', object: 'container', id: 'harness-abc123-pod', op: 'unpause' }, /only run abc123's target container/],
    ['an unpause of a network', { kind: 'docker', object: 'network', id: 'harness-abc123', op: 'unpause' }, /only run abc123's target container/],
    ['a docker op the engine never writes', { kind: 'docker', object: 'container', id: 'harness-abc123-target', op: 'pause' }, /op/],
    ['an unknown kind', { kind: 'exec', argv: ['x'] }, /kind/],
    ['an iptables-restore that flushes a table', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'iptables-restore', '-w', '5', '--noflush'], netnsPath: ns, input: '*filter\n-F INPUT\nCOMMIT\n' }, /is not one a revert of run abc123 makes/],
    ['an iptables-restore deleting another run\'s jump', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'iptables-restore', '-w', '5', '--noflush'], netnsPath: ns, input: '*filter\n-D INPUT -m comment --comment harness:zzz999 -j harness-zzz999-in\nCOMMIT\n' }, /not a jump of run abc123/],
    ['input on a command that takes none', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_syn_retries=6'], netnsPath: ns, input: 'x' }, /only an iptables-restore revert has input/],
    ['a tc that deletes what it likes', { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'tc', 'qdisc', 'del', 'dev', 'eth0', 'ingress'], netnsPath: ns }, /tc qdisc del dev IFACE root handle N:/],
  ])('refuses %s', async (_what, revert, says) => {
    const path = await write(base([{ ...ok, revert }]));
    const e = await Journal.load(path, silentLogger).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(JournalRefused);
    expect((e as JournalRefused).reason).toMatch(says);
    expect((e as JournalRefused).reason).toMatch(/^entry 0 \(x\)/);
  });

  it('accepts what the engine writes', async () => {
    const path = await write(
      base([
        { ...ok, seq: 0, revert: { kind: 'netns', name: 'harness-abc123-n' } },
        { ...ok, seq: 1, revert: { kind: 'netns', name: 'harness-abc123-t' } },
        { ...ok, seq: 2, revert: { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_rmem=4096 131072 6291456'], netnsPath: ns } },
        { ...ok, seq: 3, revert: { kind: 'kill', pid: 4321, startTicks: '123456' } },
        { ...ok, seq: 4, revert: { kind: 'docker', object: 'network', id: 'harness-abc123' } },
        { ...ok, seq: 5, revert: { kind: 'docker', object: 'container', id: 'harness-abc123-pod' } },
        { ...ok, seq: 6, revert: { kind: 'argv', argv: ['nsenter', '--net=/proc/77/ns/net', '--', 'iptables', '-w', '5', '-X', 'harness-abc123-in'], netnsPath: '/proc/77/ns/net', absent: 'Bad rule' } },
        { ...ok, seq: 7, revert: { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.tcp_syn_retries=6', 'net.ipv4.tcp_retries2=15'], netnsPath: ns } },
        { ...ok, seq: 8, revert: { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'iptables-restore', '-w', '5', '--noflush'], netnsPath: ns, input: '*filter\n-D INPUT -m comment --comment harness:abc123 -j harness-abc123-in\n-F harness-abc123-in\n-X harness-abc123-in\nCOMMIT\n' } },
        { ...ok, seq: 9, revert: { kind: 'argv', argv: ['nsenter', `--net=${ns}`, '--', 'tc', 'qdisc', 'del', 'dev', 'harnessabc123t', 'root', 'handle', '10:'], netnsPath: ns } },
        { ...ok, seq: 10, revert: { kind: 'docker', object: 'container', id: 'harness-abc123-cli' } },
        { ...ok, seq: 11, revert: { kind: 'thaw', pid: 4321, startTicks: '123456' } },
        { ...ok, seq: 12, revert: { kind: 'docker', object: 'container', id: 'harness-abc123-target', op: 'unpause' } },
      ]),
    );
    expect((await Journal.load(path, silentLogger)).pending).toHaveLength(13);
  });

  it.each([
    ['owned by no trusted user', async (p: string) => (await import('node:fs/promises')).chown(p, 65534, 65534), /owned by uid 65534/],
    ['writable by others', async (p: string) => chmod(p, 0o666), /writable by others/],
  ])('refuses a journal file %s', async (_what, spoil, says) => {
    if (_what.startsWith('owned') && process.geteuid?.() !== 0) return; // chown needs root
    const path = await write(base([]));
    await spoil(path);
    await expect(Journal.load(path, silentLogger)).rejects.toThrow(says);
  });

  it('refuses a symlink and a runId that does not match the file name', async () => {
    const target = await write(base([]), 'elsewhere');
    await symlink(target, join(dir, 'abc123.json'));
    await expect(Journal.load(join(dir, 'abc123.json'), silentLogger)).rejects.toThrow(/symlink/);
    const other = await write(base([], 'abc999'), 'abc124.json');
    await expect(Journal.load(other, silentLogger)).rejects.toThrow(/does not match its file name/);
  });

  it('scan: a refused journal of a dead writer is reported and not live; a live writer\'s run is spared', async () => {
    await write({ ...base([{ ...ok, revert: { kind: 'argv', argv: ['sh', '-c', 'x'] } }]) }, 'abc123.json');
    const mine = await create('abc124'); // written by this (live) process
    const scan = await scanJournals(silentLogger);
    expect(scan.refused.map((r) => r.path)).toEqual([join(dir, 'abc123.json')]);
    expect([...scan.live.keys()]).toEqual(['abc124']);
    expect(scan.orphans).toEqual([]);
    expect(mine.pending).toEqual([]);
  });
});
