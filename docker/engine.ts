/** The Docker engine, as the image builder sees it: is it up, and what an image is. */
import { run } from '../harness/core/exec.js';
import { onPath } from './build-step.js';

export const DOCKER_SETUP_FIX = 'run `sudo bash scripts/docker-setup.sh` (installs docker.io and debootstrap, starts dockerd)';

export interface DockerAvailability {
  ok: boolean;
  reason?: string;
  fix?: string;
  serverVersion?: string;
}

const ANSWER_TIMEOUT_MS = 15_000;

export async function dockerAvailable(): Promise<DockerAvailability> {
  if (!(await onPath('docker'))) return { ok: false, reason: 'docker CLI not found on PATH', fix: DOCKER_SETUP_FIX };
  const r = await run(['docker', 'version', '--format', '{{.Server.Version}}'], { reject: false, timeoutMs: ANSWER_TIMEOUT_MS });
  if (!r.failed) return { ok: true, serverVersion: r.stdout.trim() };
  // No exit code: the CLI was killed by the timeout (a daemon that accepts but never answers).
  if (r.exitCode === undefined) return { ok: false, reason: `docker did not answer within ${ANSWER_TIMEOUT_MS / 1000} s`, fix: DOCKER_SETUP_FIX };
  const err = lastLine(r.stderr || r.stdout);
  if (/permission denied/i.test(err)) {
    return { ok: false, reason: `cannot talk to the Docker daemon: ${err}`, fix: 'run as root, or add the user to the docker group' };
  }
  return { ok: false, reason: `Docker daemon not reachable: ${err}`, fix: DOCKER_SETUP_FIX };
}

export interface ImageInfo {
  id: string;
  labels: Record<string, string>;
}

/** The image's id and labels, or undefined when there is no such image. */
export async function imageInfo(name: string): Promise<ImageInfo | undefined> {
  const r = await run(['docker', 'image', 'inspect', '--format', '{{json .Id}} {{json .Config.Labels}}', name], { reject: false });
  if (r.failed) return undefined;
  const m = /^(\S+) (.*)$/s.exec(r.stdout.trim());
  if (!m || !m[1] || m[2] === undefined) return undefined;
  return { id: JSON.parse(m[1]) as string, labels: (JSON.parse(m[2]) ?? {}) as Record<string, string> };
}

export async function imageId(name: string): Promise<string | undefined> {
  return (await imageInfo(name))?.id;
}

/** Removes dangling images that carry `label` (what a rebuild replaced), and no others. */
export async function pruneDangling(label: string): Promise<void> {
  await run(['docker', 'image', 'prune', '--force', '--filter', `label=${label}`], { reject: false });
}

function lastLine(s: string): string {
  return s.trim().split('\n').filter(Boolean).pop() ?? s.trim();
}
