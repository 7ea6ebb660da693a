/** Facts about the running kernel that the timer model needs. */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { release } from 'node:os';
import type { KernelClock } from '../model/timer-wheel.js';

export interface KernelFacts extends KernelClock {
  release: string;
  /** Where hz came from; "assumed" means no kernel config was readable. */
  hzSource: '/proc/config.gz' | '/boot/config' | 'assumed';
}

export function parseConfigHz(config: string): number | undefined {
  const m = /^CONFIG_HZ=(\d+)$/m.exec(config);
  return m ? Number(m[1]) : undefined;
}

let cached: Promise<KernelFacts> | undefined;

export function kernelFacts(): Promise<KernelFacts> {
  cached ??= (async () => {
    const rel = release();
    const fromGz = await readFile('/proc/config.gz').then((b) => parseConfigHz(gunzipSync(b).toString('utf8')), () => undefined);
    if (fromGz) return { hz: fromGz, release: rel, hzSource: '/proc/config.gz' as const };
    const fromBoot = await readFile(`/boot/config-${rel}`, 'utf8').then(parseConfigHz, () => undefined);
    if (fromBoot) return { hz: fromBoot, release: rel, hzSource: '/boot/config' as const };
    // HZ=100 has the coarsest timer-wheel granularity for second-scale timers: the widest, safe window.
    return { hz: 100, release: rel, hzSource: 'assumed' as const };
  })();
  return cached;
}
