// Owns reading manifest files from a directory on disk (the edge in front of the pure loader).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isManifestName, MAX_MANIFEST_BYTES, type ManifestFile } from './load.js';

export async function readManifestDir(dir: string): Promise<ManifestFile[]> {
  const names = (await readdir(dir)).filter(isManifestName).sort();
  return Promise.all(names.map((name) => readManifestFile(join(dir, name))));
}

export async function readManifestFile(path: string): Promise<ManifestFile> {
  const s = await stat(path);
  // An oversized file is not read whole: the loader reports it by size.
  if (s.size > MAX_MANIFEST_BYTES) return { path, text: ' '.repeat(MAX_MANIFEST_BYTES + 1) };
  return { path, text: await readFile(path, 'utf8') };
}
