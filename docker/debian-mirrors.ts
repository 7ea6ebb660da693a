/**
 * The Debian mirror apt uses on this host, for the debootstrap of harness/debian-base. Never
 * hard-coded: CI machines point at their own mirror, and nothing else is reachable.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from './build-step.js';

/** Debian suite of the base image. */
export const DEBIAN_SUITE = 'bookworm';

export interface DebianMirrors {
  archive: string;
  security?: string;
}

interface SourceEntry {
  uri: string;
  suites: string[];
}

/**
 * Reads `<aptDir>/sources.list` and `sources.list.d/*.{list,sources}` (one-line and deb822
 * formats). `override` (HARNESS_DEBIAN_MIRROR) wins for the archive.
 */
export async function debianMirrors(aptDir = '/etc/apt', override = process.env['HARNESS_DEBIAN_MIRROR']): Promise<DebianMirrors> {
  const entries: SourceEntry[] = [];
  const files: string[] = [];
  if (existsSync(join(aptDir, 'sources.list'))) files.push(join(aptDir, 'sources.list'));
  const d = join(aptDir, 'sources.list.d');
  for (const f of (await readdir(d).catch(() => [] as string[])).sort()) {
    if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join(d, f));
  }
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => '');
    entries.push(...(f.endsWith('.sources') ? parseDeb822(text) : parseOneLine(text)));
  }
  const isSecurity = (e: SourceEntry): boolean => /debian-security/.test(e.uri) || e.suites.some((s) => s.endsWith('-security'));
  const archive =
    override ??
    entries.find((e) => !isSecurity(e) && e.suites.includes(DEBIAN_SUITE))?.uri ??
    entries.find((e) => !isSecurity(e) && /\/debian\/?$/.test(e.uri))?.uri;
  if (!archive) {
    throw new BuildError(`no Debian mirror found in ${aptDir}/sources.list*`, 'set HARNESS_DEBIAN_MIRROR=http://<your-mirror>/debian');
  }
  const security = entries.find((e) => isSecurity(e))?.uri;
  return { archive: archive.replace(/\/+$/, ''), ...(security ? { security: security.replace(/\/+$/, '') } : {}) };
}

/** `deb [options] URI SUITE COMPONENT…` lines. */
export function parseOneLine(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line.startsWith('deb ') && !line.startsWith('deb\t')) continue;
    const rest = line.slice(3).trim().replace(/^\[[^\]]*\]\s*/, '');
    const [uri, suite] = rest.split(/\s+/);
    if (uri && suite && /^https?:\/\//.test(uri)) out.push({ uri, suites: [suite] });
  }
  return out;
}

/** deb822 stanzas (`Types: deb`, `URIs:`, `Suites:`, `Enabled:`). */
export function parseDeb822(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (m && m[1] && m[2] !== undefined) fields.set(m[1].toLowerCase(), m[2].trim());
    }
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    if (/^(no|false)$/i.test(fields.get('enabled') ?? 'yes')) continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) {
      if (/^https?:\/\//.test(uri)) out.push({ uri, suites });
    }
  }
  return out;
}
