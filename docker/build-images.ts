/**
 * CLI: build the harness container images (whatever is missing or stale).
 *
 *   node dist/docker/build-images.js [--force] [--refresh-rootfs] [--verbose] [--probe-binary PATH] [IMAGE…]
 *
 * IMAGE is a key (probe, debian-base, nginx, redis) or a name (harness/nginx:local); default all.
 * Prints one line per image on stdout (name, built|cached|failed|skipped, seconds); progress on
 * stderr. Exit 0 when every selected image exists, 1 when one failed, 2 on bad usage,
 * 3 when Docker is not available.
 */
import { parseArgs } from 'node:util';
import { buildImages, dockerAvailable, imageOrder, images, resolveImageKey } from './images.js';

const USAGE = `usage: build-images [--force] [--refresh-rootfs] [--verbose] [--probe-binary PATH] [IMAGE...]
images: ${imageOrder.map((k) => `${k} (${images[k].name})`).join(', ')}`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        force: { type: 'boolean', default: false },
        'refresh-rootfs': { type: 'boolean', default: false },
        verbose: { type: 'boolean', short: 'v', default: false },
        'probe-binary': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    for (const p of parsed.positionals) resolveImageKey(p);
  } catch (e) {
    process.stderr.write(`build-images: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const avail = await dockerAvailable();
  if (!avail.ok) {
    process.stderr.write(`build-images: ${avail.reason}\n  fix: ${avail.fix}\n`);
    return 3;
  }
  const report = await buildImages({
    only: positionals,
    force: values.force,
    refreshRootfs: values['refresh-rootfs'],
    verbose: values.verbose,
    ...(values['probe-binary'] ? { probeBinary: values['probe-binary'] } : {}),
    log: (msg) => process.stderr.write(`build-images: ${msg}\n`),
  });
  for (const r of report.images) {
    process.stdout.write(`${r.name.padEnd(28)} ${r.status.padEnd(8)} ${(r.durationMs / 1000).toFixed(1).padStart(6)} s\n`);
    if (r.error) process.stdout.write(`  ${r.error.split('\n').join('\n  ')}\n`);
    if (r.fix) process.stdout.write(`  fix: ${r.fix}\n`);
  }
  process.stdout.write(`total ${(report.totalMs / 1000).toFixed(1)} s\n`);
  return report.ok ? 0 : 1;
}

process.exitCode = await main();
