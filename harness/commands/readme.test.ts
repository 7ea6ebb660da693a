import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderReadme, replaceSection } from './readme.js';

describe('README', () => {
  it('carries the catalogue generated from the fault definitions (npm run readme)', async () => {
    const text = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    expect(renderReadme(text)).toBe(text);
  });
  it('replaces only between the markers', () => {
    expect(replaceSection('a\n<!-- x:start -->\nold\n<!-- x:end -->\nb', 'x', 'new')).toBe('a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb');
  });
});
