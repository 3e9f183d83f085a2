// A self-signed certificate and its key made by the real openssl, for tests that read certificates.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes a self-signed certificate for `cn` (EC P-256) and its key at the given paths; throws on failure. */
export function selfSignedAt(cn: string, days: number, keyPath: string, certPath: string, extra: string[] = []): void {
  const r = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      String(days),
    ].concat(['-subj', `/CN=${cn}`, ...extra, '-keyout', keyPath, '-out', certPath]),
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
}

/** Writes c.pem and k.pem (EC P-256) in a new directory and returns it; `extra` adds openssl req options. */
export function selfSigned(cn: string, days: number, extra: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'nf-cert-'));
  selfSignedAt(cn, days, join(dir, 'k.pem'), join(dir, 'c.pem'), extra);
  return dir;
}
