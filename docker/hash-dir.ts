import type { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Feeds a folder's names and contents, in a stable order, into `hash`: an image's inputs label,
 * a config target's build tag. Any change in the folder changes the hash.
 */
export async function hashDir(hash: ReturnType<typeof createHash>, dir: string): Promise<void> {
  const names = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of names) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      hash.update(`d\0${e.name}\0`);
      await hashDir(hash, p);
    } else if (e.isFile()) {
      hash.update(`f\0${e.name}\0`);
      hash.update(await readFile(p));
    }
  }
}
