/**
 * exec.ts is the one place that spawns (argv only, one set of defaults, one place to add process
 * groups): no other source file of the harness, faults, targets or docker imports execa or
 * node:child_process. Tests and build scripts are outside this rule.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, test } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SPAWNERS = /from\s+['"](execa|node:child_process|child_process)['"]|import\(\s*['"](execa|node:child_process|child_process)['"]/;

test('only harness/core/exec.ts imports execa or child_process', () => {
  const offenders: string[] = [];
  for (const dir of ['harness', 'faults', 'targets', 'docker']) {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
      if (!e.isFile() || !e.name.endsWith('.ts') || e.name.endsWith('.test.ts') || e.name.endsWith('.d.ts')) continue;
      const file = relative(ROOT, join(e.parentPath, e.name));
      if (SPAWNERS.test(readFileSync(join(ROOT, file), 'utf8'))) offenders.push(file);
    }
  }
  expect(offenders).toEqual(['harness/core/exec.ts']);
});
