// Owns reading manifest files from a directory on disk (the edge in front of the pure loader). Every
// manifest-like entry (any case of .yaml/.yml, at any depth) is read or reported, exactly as the
// controller does for a Git tree (source/git-source.ts): a directory or link named like a manifest
// and manifests in subdirectories are reported, never skipped in silence.
import { lstatSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isManifestName, MAX_MANIFEST_BYTES, oversized, type ManifestFile } from './load.js';
import { byCodePoint } from '../util/order.js';

export class ManifestDirError extends Error {}

/** Why an entry that looks like a manifest is not read, by what it is and where it lies. */
export function unreadableReason(kind: 'file' | 'dir' | 'link' | 'other', nested: boolean): string | undefined {
  if (nested) return 'lies in a subdirectory: natsfleet reads manifests only directly in the hosts directory';
  if (kind === 'dir') return 'is a directory, not a manifest file';
  if (kind === 'link') return 'is a symbolic link: natsfleet reads only regular files';
  if (kind === 'other') return 'is not a regular file';
  return undefined;
}

export async function readManifestDir(dir: string): Promise<ManifestFile[]> {
  const top = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new ManifestDirError(
      e.code === 'ENOENT'
        ? `${dir}: no such directory`
        : e.code === 'ENOTDIR'
          ? `${dir}: not a directory`
          : `${dir}: cannot be read (${e.code ?? 'error'})`,
    );
  });
  const out: ManifestFile[] = [];
  const walk = async (entries: typeof top, base: string, nested: boolean) => {
    for (const e of entries.sort((a, b) => byCodePoint(a.name, b.name))) {
      const path = join(base, e.name);
      if (e.isDirectory()) {
        if (isManifestName(e.name)) out.push({ path, text: '', unreadable: unreadableReason('dir', nested) });
        // Deeper levels are listed only to report what would otherwise be missed (bounded depth).
        else if (path.split('/').length - dir.split('/').length < 4) {
          await walk(await readdir(path, { withFileTypes: true }).catch(() => []), path, true);
        }
        continue;
      }
      if (!isManifestName(e.name)) continue;
      const kind = e.isFile() ? 'file' : e.isSymbolicLink() ? 'link' : 'other';
      const why = unreadableReason(kind, nested);
      out.push(why ? { path, text: '', unreadable: why } : readManifestFile(path));
    }
  };
  await walk(top, dir, false);
  return out;
}

/**
 * Reads one manifest, synchronously: the commands that read a hosts directory run once and wait for it
 * (10,000 files took 3 s one after the other with promises, each read being several thread-pool hops).
 */
export function readManifestFile(path: string): ManifestFile {
  const s = lstatSync(path);
  if (!s.isFile()) return { path, text: '', unreadable: unreadableReason(s.isDirectory() ? 'dir' : 'other', false) };
  // An oversized file is not read whole: the loader reports it by size.
  if (s.size > MAX_MANIFEST_BYTES) return oversized(path);
  return { path, text: readFileSync(path, 'utf8') };
}
