/**
 * The CLI as a user runs it: bad input gets a clear message naming the flag and the documented
 * exit code, and changes nothing on the machine; Ctrl-C and SIGTERM revert; after kill -9,
 * `harness gc` removes everything the run left.
 */
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { hostSnapshot } from './support/host-snapshot.js';
import { describe, expect, isRoot, test } from './support/fixtures.js';

const CLI = ['dist/harness/cli.js'];
const harness = (args: string[], opts: { uid?: number } = {}) =>
  opts.uid === undefined
    ? execa('node', [...CLI, ...args], { reject: false })
    : execa('setpriv', [`--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', 'node', ...CLI, ...args], { reject: false });

/** Waits until a run's target and client namespaces exist (the nursery `-n` lives only briefly). */
async function waitForNetns(timeoutMs = 10_000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ns = (await readdir('/run/netns').catch(() => [] as string[])).filter((n) => /^harness-[a-z0-9]+-[tc]$/.test(n));
    if (ns.length >= 2) return ns;
    await sleep(50);
  }
  throw new Error('the run never made its namespaces');
}

describe.skipIf(!isRoot)('harness CLI', { tags: ['cli', 'netns'] }, () => {
  test.for([
    { args: ['run', 'no-such-scenario'], flag: 'scenario', says: /unknown scenario "no-such-scenario"/, fix: /syn-drop/ },
    { args: ['run', 'syn-drop', '--sysctl', 'client:net.ipv4.tcp_syn_retriez=3'], flag: '--sysctl', says: /unknown sysctl/, fix: /did you mean|per network namespace/ },
    { args: ['run', 'syn-drop', '--sysctl', 'tcp_syn_retries=3'], flag: '--sysctl', says: /SIDE:KEY=VALUE/, fix: /client:net\.ipv4/ },
    { args: ['run', 'syn-drop', '--sysctl', 'client:net.ipv4.tcp_syn_retries=three'], flag: '--sysctl', says: /not a number/, fix: /integers/ },
    { args: ['run', 'syn-drop', '--sysctl', 'client:net.ipv4.tcp_syn_retries=1000'], flag: '--sysctl', says: /kernel refuses/, fix: /range/ },
    { args: ['run', 'syn-drop', '--sysctl', 'server:net.core.rmem_max=1'], flag: '--sysctl', says: /host-global/, fix: /never changes the host/ },
    { args: ['run', 'syn-drop', '--port', '0'], flag: '--port', says: /not a TCP port/, fix: /1 to 65535/ },
    { args: ['run', 'syn-drop', '--port', '70000'], flag: '--port', says: /not a TCP port/, fix: /1 to 65535/ },
    { args: ['run', 'syn-drop', '--port', '80x'], flag: '--port', says: /not a TCP port/, fix: /1 to 65535/ },
    { args: ['run', 'syn-drop', '--set', 'syncnt=many'], flag: '--set', says: /syncnt/, fix: /parameters of syn-drop/ },
    { args: ['run', 'syn-drop', '--set', 'nosuch=1'], flag: '--set', says: /nosuch/, fix: /parameters of syn-drop/ },
    { args: ['run', 'syn-drop', '--target', 'nowhere'], flag: '--target', says: /unknown target "nowhere"/, fix: /one of/ },
    { args: ['run'], flag: 'scenario', says: /no scenario/, fix: /--all/ },
    { args: ['run', 'syn-drop', '--pcap', '/proc/x'], flag: '--pcap', says: /pseudo file system/, fix: /directory you can write/ },
    { args: ['run', 'syn-drop', '--sysctl', 'client:net.ipv4.tcp_rmem=1 2'], flag: '--sysctl', says: /only as/, fix: /every field/ },
    { args: ['run', 'syn-drop', '--'], flag: '--', says: /client command is empty/, fix: /after --/ },
    { args: ['run', 'syn-drop', '--', 'no-such-command-xyz'], flag: '--', says: /command not found/, fix: /PATH/ },
    { args: ['run', 'syn-drop', '--', 'curl', 'http://{hots}/'], flag: '--', says: /unknown placeholder/, fix: /\{host\}/ },
    { args: ['run', 'syn-drop', '--client-image', 'harness/redis:local', '--', 'true'], flag: '--client-image', says: /netns target/, fix: /container target/ },
    { args: ['run', 'syn-drop', '--strike', 'at:1s', '--', 'true'], flag: '--strike', says: /does not strike mid-connection/, fix: /drop --strike/ },
    { args: ['run', 'app-crash', '--strike', 'soon', '--', 'true'], flag: '--strike', says: /not a strike/, fix: /established/ },
    { args: ['run', 'syn-drop', '--expect-exit', '1'], flag: '--expect-exit', says: /goes with a client command/, fix: /after --/ },
    { args: ['run', 'fin-drop', '--', 'true'], flag: '--', says: /cannot drive your own client/, fix: /your client/ },
    { args: ['run', 'syn-drop', 'app-crash', '--', 'true'], flag: '--', says: /one scenario at a time/, fix: /name one/ },
    { args: ['run', 'addr-in-use', '--target', 'redis'], flag: '--target', says: /addr-in-use cannot run on target redis: it needs a server that closes first/, fix: /targets it runs on: builtin, nginx, probe-container/ },
    { args: ['run', 'addr-in-use', '--target', 'nginx', '--set', 'serverReuseaddr=false'], flag: '--set', says: /serverReuseaddr: false on target nginx/, fix: /builtin, probe-container/ },
    { args: ['run', 'addr-in-use', '--set', 'connections=65'], flag: '--set', says: /connections/, fix: /parameters of addr-in-use/ },
    { args: ['run', 'nagle-delack', '--target', 'echo'], flag: '--target', says: /built-in echo mode/, fix: /targets it runs on/ },
    { args: ['run', 'nagle-delack', '--set', 'variant=quickack'], flag: '--set', says: /variant/, fix: /parameters of nagle-delack/ },
    { args: ['run', 'loss', '--set', 'probability=2'], flag: '--set', says: /probability/, fix: /parameters of loss/ },
    { args: ['run', 'bandwidth', '--set', 'rate=10furlongs'], flag: '--set', says: /rate: "10furlongs" is not a rate/, fix: /parameters of bandwidth/ },
    { args: ['run', 'latency', '--set', 'delayMs=0'], flag: '--set', says: /delayMs/, fix: /parameters of latency/ },
    { args: ['run', 'latency', '--set', 'jitterMs=150'], flag: '--set', says: /jitterMs: must not exceed delayMs/, fix: /parameters of latency/ },
    { args: ['run', 'partition', '--set', 'outageMs=-5'], flag: '--set', says: /outageMs/, fix: /parameters of partition/ },
  ])('bad input $args.3: exit 2, names $flag, changes nothing', async ({ args, flag, says, fix }) => {
    const before = await hostSnapshot();
    const r = await harness(args);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${flag}:`);
    expect(r.stderr).toMatch(says);
    expect(r.stderr).toMatch(new RegExp(`fix: .*${fix.source}`));
    expect(await hostSnapshot()).toEqual(before);
  });

  test('an unknown option is a usage error too', async () => {
    const r = await harness(['run', 'syn-drop', '--frobnicate']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--frobnicate'/);
  });

  test('not root: exit 3, says so, changes nothing', async () => {
    const before = await hostSnapshot();
    const r = await harness(['run', 'syn-drop'], { uid: 65534 });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/root/);
    expect(r.stderr).toMatch(/fix: /);
    expect(await hostSnapshot()).toEqual(before);
  });

  test('list shows every scenario with its parameters', async () => {
    const r = await harness(['list', '--json']);
    expect(r.exitCode).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; params: { name: string }[] }[];
    expect(list.map((f) => f.name)).toContain('syn-drop');
    expect(list.find((f) => f.name === 'syn-drop')!.params.map((p) => p.name)).toContain('syncnt');
  });

  test('--json prints one passing Result per scenario on stdout, logs only on stderr', async () => {
    const before = await hostSnapshot();
    const r = await harness(['run', 'syn-drop', '--json', '--sysctl', 'client:net.ipv4.tcp_syn_retries=1']);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!);
    expect(result).toMatchObject({ version: 1, scenario: 'syn-drop', verdict: 'pass', target: { backend: 'netns' } });
    expect(result.steps[0]).toMatchObject({ op: 'connect', ok: false, errno: 'ETIMEDOUT' });
    expect(result.sysctls.client['net.ipv4.tcp_syn_retries']).toBe('1');
    expect(await hostSnapshot()).toEqual(before);
  });

  test.for(['SIGINT', 'SIGTERM'] as const)('%s mid-run reverts everything and exits 130/143', async (signal) => {
    const before = await hostSnapshot();
    const child = execa('node', [...CLI, 'run', 'syn-drop'], { reject: false });
    await waitForNetns();
    await sleep(300); // inside the connect: rules applied, probe running
    child.kill(signal);
    const r = await child;
    expect(r.exitCode).toBe(signal === 'SIGINT' ? 130 : 143);
    expect(await hostSnapshot()).toEqual(before);
  });

  test('kill -9 leaves namespaces behind; harness gc removes every one of them', async () => {
    const before = await hostSnapshot();
    const child = execa('node', [...CLI, 'run', 'syn-drop'], { reject: false });
    const made = await waitForNetns();
    await sleep(300);
    child.kill('SIGKILL');
    await child;
    const left = await hostSnapshot();
    expect(left.netns.length).toBeGreaterThan(0); // proof the kill really left something to clean
    expect(made.every((n) => left.netns.includes(n))).toBe(true);
    const gc = await harness(['gc']);
    expect(gc.exitCode).toBe(0);
    expect(gc.stdout).toMatch(/replayed journals: 1/);
    expect(await hostSnapshot()).toEqual(before);
  });
});
