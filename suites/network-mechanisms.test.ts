/**
 * A machine that lacks what latency, bandwidth or loss need is refused while the run is prepared,
 * before anything changes: exit 3, the reason and the package. Here `tc` is missing: the CLI runs
 * with a PATH that holds every other tool the check needs.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, isRoot, test } from './support/fixtures.js';

describe.skipIf(!isRoot)('refused for a missing mechanism', { tags: ['netns'] }, () => {
  test('bandwidth without tc: refused before anything runs, exit 3, names iproute2', async ({ expect }) => {
    const dir = await mkdtemp(join(tmpdir(), 'harness-nopath-'));
    try {
      for (const t of ['unshare', 'iptables', 'iptables-save', 'ip', 'nsenter', 'sysctl', 'find', 'cat']) {
        const at = (process.env.PATH ?? '').split(':').map((d) => join(d, t)).find((f) => existsSync(f));
        if (at) await symlink(at, join(dir, t));
      }
      const r = await execa(process.execPath, ['dist/harness/cli.js', 'run', 'bandwidth'], { reject: false, env: { PATH: dir } });
      expect(r.exitCode).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/bandwidth needs tbf qdisc .* tc is not installed/);
      expect(r.stderr).toMatch(/fix: apt-get install -y iproute2/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
