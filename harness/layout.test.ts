/**
 * The floors of the code, checked: imports only run downwards (or sideways where named), so the
 * plumbing never depends on the faults and targets built on it, nor those on the engine.
 *
 *   floor 1  harness/core, harness/model, harness/verdict   plumbing, the timer model, the checks
 *   floor 2  faults/, targets/, docker/                     what a run is made of
 *   floor 3  harness/engine, commands, report, testing,     the runner, the CLI, the library
 *            bench, cli.ts, index.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** The floor of a file, by its path from the package root; undefined for files outside the floors. */
export function floorOf(path: string): { floor: number; area: string } | undefined {
  const p = path.replace(/\\/g, '/');
  for (const area of ['harness/core/', 'harness/model/', 'harness/verdict/']) if (p.startsWith(area)) return { floor: 1, area };
  for (const area of ['faults/', 'targets/', 'docker/']) if (p.startsWith(area)) return { floor: 2, area };
  if (p.startsWith('harness/')) return { floor: 3, area: 'harness/' };
  return undefined;
}

/** Sideways imports allowed on floor 2: faults may name target types and docker images; targets may use docker. */
const SIDEWAYS: Record<string, readonly string[]> = {
  'faults/': ['targets/'],
  'targets/': ['docker/'],
  'docker/': [],
};

export function importViolation(from: string, to: string): string | undefined {
  const a = floorOf(from);
  const b = floorOf(to);
  if (!a || !b) return undefined;
  if (b.floor > a.floor) return `${from} (floor ${a.floor}) imports ${to} (floor ${b.floor}): an upward arrow`;
  if (a.floor === 2 && b.floor === 2 && a.area !== b.area && !SIDEWAYS[a.area]?.includes(b.area)) {
    return `${from} imports ${to}: ${a.area} may not depend on ${b.area}`;
  }
  return undefined;
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

function importsOf(file: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:from\s+|import\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    out.push(relative(ROOT, resolve(ROOT, dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
  }
  return out;
}

describe('layout', () => {
  test('the rule itself: upward and forbidden sideways arrows are named', () => {
    expect(importViolation('harness/core/exec.ts', 'harness/engine/runner.ts')).toMatch(/upward/);
    expect(importViolation('harness/verdict/checks.ts', 'faults/define.ts')).toMatch(/upward/);
    expect(importViolation('targets/netns.ts', 'faults/define.ts')).toMatch(/may not depend/);
    expect(importViolation('faults/syn-drop.ts', 'harness/model/tcp.ts')).toBeUndefined();
    expect(importViolation('harness/engine/runner.ts', 'faults/index.ts')).toBeUndefined();
  });

  test('every import in the tree runs downwards', () => {
    const violations: string[] = [];
    for (const dir of ['harness', 'faults', 'targets', 'docker']) {
      for (const f of sources(dir)) for (const to of importsOf(f)) {
        const v = importViolation(f, to);
        if (v) violations.push(v);
      }
    }
    expect(violations).toEqual([]);
  });
});
