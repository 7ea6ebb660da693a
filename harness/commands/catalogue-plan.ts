/**
 * plans/catalogue.yaml: every documented variant of every scenario (each combination of its
 * enumerated parameters, the rest at their defaults), generated from the fault definitions so it
 * cannot drift from them. `npm run readme` rewrites it; a unit test fails when it is stale.
 */
import type { z } from 'zod';
import { stringify } from 'yaml';
import { faults } from '../../faults/index.js';
import type { FaultDefinition } from '../../faults/define.js';
import type { PlanEntry } from '../engine/plan.js';

type Fault = FaultDefinition<z.ZodObject>;

/** The options of an enum parameter (possibly wrapped in a default), or undefined. */
function enumOptions(schema: unknown): string[] | undefined {
  const s = schema as { options?: string[]; def?: { innerType?: { options?: string[] } } };
  return s.options ?? s.def?.innerType?.options;
}

function combos(f: Fault): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const [key, schema] of Object.entries(f.params.shape)) {
    const opts = enumOptions(schema);
    if (!opts) continue;
    out = out.flatMap((c) => opts.map((o) => ({ ...c, [key]: o })));
  }
  // Combinations the fault's schema refuses (e.g. a client-only variant on the server side) are not variants.
  return out.filter((c) => f.params.safeParse(c).success);
}

export function cataloguePlan(): PlanEntry[] {
  return (Object.values(faults) as unknown as Fault[]).flatMap((f) =>
    combos(f).map((set) => {
      const name = [f.name, ...Object.entries(set).map(([k, v]) => `${k}=${v}`)].join(' ');
      return Object.keys(set).length ? { name, scenario: f.name, set } : { name, scenario: f.name };
    }),
  );
}

export function renderCataloguePlan(): string {
  return `# Every documented variant of every scenario, generated from the fault definitions by
# \`npm run readme\` (do not edit). Run it with: harness run --plan plans/catalogue.yaml
${stringify(cataloguePlan())}`;
}
