// A self-signed certificate and its key made by the real openssl, for tests that read certificates.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes c.pem and k.pem (EC P-256) in a new directory and returns it; `extra` adds openssl req options. */
export function selfSigned(cn: string, days: number, extra: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'nf-cert-'));
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
    ].concat(['-subj', `/CN=${cn}`, ...extra, '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')]),
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
  return dir;
}
