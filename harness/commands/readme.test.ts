import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderReadme, replaceSection } from './readme.js';
import { cataloguePlan, renderCataloguePlan } from './catalogue-plan.js';
import { parsePlan } from '../engine/plan.js';

describe('README', () => {
  it('carries the catalogue generated from the fault definitions (npm run readme)', async () => {
    const text = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    expect(renderReadme(text)).toBe(text);
  });
  it('replaces only between the markers', () => {
    expect(replaceSection('a\n<!-- x:start -->\nold\n<!-- x:end -->\nb', 'x', 'new')).toBe('a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb');
  });
});

describe('plans/catalogue.yaml', () => {
  it('is the catalogue generated from the fault definitions (npm run readme)', async () => {
    const text = await readFile(new URL('../../plans/catalogue.yaml', import.meta.url), 'utf8');
    expect(text).toBe(renderCataloguePlan());
  });
  it('is a valid plan with one run per documented variant', () => {
    const entries = parsePlan(renderCataloguePlan(), 'catalogue.yaml');
    expect(entries.length).toBe(cataloguePlan().length);
    expect(entries.filter((e) => e.scenario === 'reject')).toHaveLength(16);
    expect(new Set(entries.map((e) => e.name)).size).toBe(entries.length);
  });
});
