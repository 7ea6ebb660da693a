/**
 * Keeps the README's generated sections true: the catalogue table comes from the fault
 * definitions (`harness list --markdown`). `npm run readme` rewrites it; a unit test fails when
 * the README drifts from the code.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCataloguePlan } from './catalogue-plan.js';
import { listCommand } from './list.js';

export function replaceSection(text: string, name: string, body: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README has no ${name} markers`);
  return `${text.slice(0, i + start.length)}\n${body.trimEnd()}\n${text.slice(j)}`;
}

export function renderReadme(text: string): string {
  return replaceSection(text, 'catalogue', listCommand({ markdown: true }));
}

export const CATALOGUE_PLAN = 'plans/catalogue.yaml';

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = process.argv[2] ?? 'README.md';
  const text = await readFile(path, 'utf8');
  await writeFile(path, renderReadme(text));
  await mkdir(dirname(CATALOGUE_PLAN), { recursive: true });
  await writeFile(CATALOGUE_PLAN, renderCataloguePlan());
  process.stdout.write(`${path}: catalogue regenerated; ${CATALOGUE_PLAN} regenerated\n`);
}
