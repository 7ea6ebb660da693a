import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from './journal.js';
import { silentLogger } from './log.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'journal-'));
  process.env.HARNESS_STATE_DIR = dir;
});
afterEach(async () => {
  delete process.env.HARNESS_STATE_DIR;
  await rm(dir, { recursive: true, force: true });
});

describe('journal', () => {
  it('writes the revert to disk before the change runs', async () => {
    const j = await Journal.create('abc123', silentLogger);
    let seenOnDisk = 0;
    await j.change('touch', { kind: 'argv', argv: ['true'] }, async () => {
      seenOnDisk = (await Journal.load(j.path, silentLogger)).pending.length;
    });
    expect(seenOnDisk).toBe(1);
  });

  it('reverts newest first, carries on past a failure, reports it, and keeps the file', async () => {
    const j = await Journal.create('abc123', silentLogger);
    const order: string[] = [];
    const file = join(dir, 'order');
    await j.record('first', { kind: 'argv', argv: ['sh', '-c', `echo first >> ${file}`] });
    await j.record('broken', { kind: 'argv', argv: ['false'] });
    await j.record('last', { kind: 'argv', argv: ['sh', '-c', `echo last >> ${file}`] });
    const r = await j.revertAll();
    order.push(...(await import('node:fs/promises').then((fs) => fs.readFile(file, 'utf8'))).trim().split('\n'));
    expect(order).toEqual(['last', 'first']);
    expect(r.reverted).toBe(2);
    expect(r.failed.map((f) => f.describe)).toEqual(['broken']);
    expect(await readdir(dir)).toContain('abc123.json');
  });

  it('can run twice: the second time does nothing and removes the file', async () => {
    const j = await Journal.create('abc123', silentLogger);
    await j.record('once', { kind: 'argv', argv: ['true'] });
    expect((await j.revertAll()).reverted).toBe(1);
    expect((await j.revertAll()).reverted).toBe(0);
    expect(await readdir(dir)).not.toContain('abc123.json');
  });

  it('treats "already gone" as undone', async () => {
    const j = await Journal.create('abc123', silentLogger);
    await j.record('gone', { kind: 'argv', argv: ['sh', '-c', 'echo "Bad rule (does a matching rule exist in that chain?)" >&2; exit 1'], absent: 'does a matching rule exist' });
    await j.record('netns gone', { kind: 'argv', argv: ['false'], netnsPath: join(dir, 'no-such-netns') });
    expect((await j.revertAll()).failed).toEqual([]);
  });
});
