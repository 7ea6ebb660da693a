/** `harness list`: the catalogue (optionally as the README's markdown table). */
import type { z } from 'zod';
import { faults } from '../../faults/index.js';
import type { FaultDefinition } from '../../faults/define.js';
import { onYourServer } from '../engine/applicability.js';

export interface ParamInfo {
  name: string;
  description: string;
  optional: boolean;
  default?: unknown;
}

export function paramInfo(f: FaultDefinition<z.ZodObject>): ParamInfo[] {
  return Object.entries(f.params.shape).map(([name, schema]) => {
    const s = schema as z.ZodType & { description?: string };
    const def = (s as unknown as { def?: { defaultValue?: unknown; type?: string } }).def;
    return {
      name,
      description: s.description ?? '',
      optional: s.safeParse(undefined).success,
      ...(def?.type === 'default' ? { default: def.defaultValue } : {}),
    };
  });
}

export function listCommand(opts: { markdown?: boolean; json?: boolean }): string {
  const all = Object.values(faults) as unknown as FaultDefinition<z.ZodObject>[];
  if (opts.json) {
    return `${JSON.stringify(all.map((f) => ({ name: f.name, summary: f.summary, observes: f.observes, shapedBy: f.shapedBy, params: paramInfo(f), yourClient: Boolean(f.connection), needs: f.needs(f.params.parse({})), onYourServer: onYourServer(f) })), null, 2)}\n`;
  }
  if (opts.markdown) {
    const rows = all.map((f) => {
      const shaped = Object.entries(f.shapedBy)
        .map(([side, keys]) => (keys ?? []).map((k) => `${side}:\`${k.replace(/^net\.(ipv4|core)\./, '')}\``).join(', '))
        .filter(Boolean)
        .join(', ');
      const params = paramInfo(f).map((p) => `\`${p.name}\`${p.default !== undefined ? `=${String(p.default)}` : ''} — ${p.description}`).join('<br>');
      return `| \`${f.name}\` | ${f.summary} | ${f.observes} | ${shaped || '—'} | ${params || '—'} | ${f.connection ? 'yes' : '—'} | ${onYourServer(f)} |`;
    });
    return ['| scenario | what it reproduces | what a client observes | shaped by | parameters (`--set`) | your client (`-- CMD`) | on your server (`--target`) |', '|---|---|---|---|---|---|---|', ...rows].join('\n') + '\n';
  }
  return all
    .map((f) => {
      const params = paramInfo(f).map((p) => `      --set ${p.name}=…  ${p.description}${p.default !== undefined ? ` (default ${String(p.default)})` : ''}`);
      return [`${f.name.padEnd(18)} ${f.summary}`, `${''.padEnd(18)} observes: ${f.observes}`, `${''.padEnd(18)} your client: ${f.connection ? 'yes (harness run ' + f.name + ' -- COMMAND)' : 'no (defined by the probe\'s script)'}`, `${''.padEnd(18)} on your server: ${onYourServer(f)}`, ...params].join('\n');
    })
    .join('\n') + '\n';
}
