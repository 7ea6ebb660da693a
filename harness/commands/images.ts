/**
 * `harness images build [--force] [--refresh-rootfs] [--verbose] [--probe-binary PATH] [IMAGE…]`:
 * builds the images of the container targets that are missing or stale (docker/). IMAGE is a key
 * (probe, debian-base, nginx, redis) or a name (harness/nginx:local); default all.
 *
 * stdout: one line per image (name, built|cached|failed|skipped, seconds), the error and fix under
 * a failed one; progress on stderr. Exit 0 when every selected image exists; 2 bad usage (an
 * unknown image, a --probe-binary that is not a static executable), nothing built; 3 environment
 * (Docker down, or a build failed: debootstrap, the Debian mirror, a Dockerfile step).
 */
import { buildImages } from '../../docker/build.js';
import { dockerAvailable } from '../../docker/engine.js';
import { resolveImageKey } from '../../docker/images.js';
import { fileNotStaticElf } from '../../docker/static-elf.js';
import { EnvironmentError, UsageError, type ExitCode } from '../core/errors.js';

export interface ImagesBuildOptions {
  only?: string[];
  force?: boolean;
  refreshRootfs?: boolean;
  verbose?: boolean;
  /** A static probe binary for harness/probe, instead of probe/build/harness-probe-static. */
  probeBinary?: string;
}

export async function imagesBuildCommand(
  opts: ImagesBuildOptions,
  io: { write: (s: string) => void; log: (msg: string) => void; env?: NodeJS.ProcessEnv },
): Promise<{ exitCode: ExitCode }> {
  // Every value is checked before Docker is asked anything.
  for (const name of opts.only ?? []) resolveImageKey(name, 'IMAGE');
  const env = io.env ?? process.env;
  const [probeFlag, probeBinary] = opts.probeBinary !== undefined ? ['--probe-binary', opts.probeBinary] : ['HARNESS_PROBE_STATIC', env['HARNESS_PROBE_STATIC']];
  if (probeBinary !== undefined) {
    const why = await fileNotStaticElf(probeBinary);
    if (why) throw new UsageError(probeFlag, `${probeBinary}: ${why}`, 'pass a binary built with `make -C probe static` (probe/build/harness-probe-static), or leave it out');
  }

  const avail = await dockerAvailable();
  if (!avail.ok) throw new EnvironmentError('E_DOCKER', avail.reason ?? 'Docker is not available', avail.fix);
  const report = await buildImages({
    ...(opts.only?.length ? { only: opts.only } : {}),
    force: Boolean(opts.force),
    refreshRootfs: Boolean(opts.refreshRootfs),
    verbose: Boolean(opts.verbose),
    ...(probeBinary !== undefined ? { probeBinary } : {}),
    log: io.log,
  });
  for (const r of report.images) {
    io.write(`${r.name.padEnd(28)} ${r.status.padEnd(8)} ${(r.durationMs / 1000).toFixed(1).padStart(6)} s\n`);
    if (r.error) io.write(`  ${r.error.split('\n').join('\n  ')}\n`);
    if (r.fix) io.write(`  fix: ${r.fix}\n`);
  }
  io.write(`total ${(report.totalMs / 1000).toFixed(1)} s\n`);
  // A build that fails here is the machine's (mirror, disk, Docker), never a verdict: exit 3.
  return { exitCode: report.ok ? 0 : 3 };
}
