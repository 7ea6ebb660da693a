/** `harness images build [IMAGE…] [--force]`: builds the container images of the container targets (docker/images.ts). */
import { buildImages, dockerAvailable, resolveImageKey } from '../../docker/images.js';
import { EnvironmentError, UsageError, type ExitCode } from '../core/errors.js';

export interface ImagesBuildOptions {
  only?: string[];
  force?: boolean;
  verbose?: boolean;
}

export async function imagesBuildCommand(opts: ImagesBuildOptions, io: { write: (s: string) => void; log: (msg: string) => void }): Promise<{ exitCode: ExitCode }> {
  for (const name of opts.only ?? []) {
    try {
      resolveImageKey(name);
    } catch (e) {
      throw new UsageError('image', e instanceof Error ? e.message : String(e));
    }
  }
  const avail = await dockerAvailable();
  if (!avail.ok) throw new EnvironmentError('E_DOCKER', avail.reason ?? 'Docker is not available', avail.fix);
  const report = await buildImages({ ...(opts.only?.length ? { only: opts.only } : {}), force: Boolean(opts.force), verbose: Boolean(opts.verbose), log: io.log });
  for (const r of report.images) {
    io.write(`${r.name.padEnd(28)} ${r.status.padEnd(8)} ${(r.durationMs / 1000).toFixed(1).padStart(6)} s\n`);
    if (r.error) io.write(`  ${r.error.split('\n').join('\n  ')}\n`);
    if (r.fix) io.write(`  fix: ${r.fix}\n`);
  }
  io.write(`total ${(report.totalMs / 1000).toFixed(1)} s\n`);
  return { exitCode: report.ok ? 0 : 3 };
}
