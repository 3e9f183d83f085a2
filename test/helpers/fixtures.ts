// Test helpers: the manifests of hosts/ and test/fixtures/hosts as loaded HostSpecs, and a
// secret source that never reads the real environment.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifests, type ManifestFile } from '../../controller/manifest/load.js';
import { secretResolver } from '../../controller/secrets/resolve.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const FIXTURE_TOKEN = 'fixture-token-not-a-secret';
/** Characters a route URL must encode. */
export const FIXTURE_ROUTE_PASSWORD = 'route/p@ss:word%';

export const fixtureSecrets = secretResolver({
  env: {
    NATS_EU1_TOKEN: FIXTURE_TOKEN,
    NATS_CORE_TOKEN: FIXTURE_TOKEN,
    NATS_CORE_ROUTE_PASSWORD: FIXTURE_ROUTE_PASSWORD,
    NATS_CORE_SYSTEM_PASSWORD: 'fixture-system-password',
  },
  readFile: (path) => {
    if (path === '/etc/natsfleet/secrets/edge-token') return `${FIXTURE_TOKEN}-from-file\n`;
    throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  },
});

export function readDir(dir: string): ManifestFile[] {
  return readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ path: `${dir}/${f}`, text: readFileSync(join(ROOT, dir, f), 'utf8') }));
}

/** Every valid manifest the project ships or tests with. */
export function allGoodHosts() {
  const out = [];
  for (const dir of ['hosts', 'test/fixtures/hosts', 'test/fixtures/clusters']) {
    const { hosts, problems } = loadManifests(readDir(dir));
    const errors = problems.filter((p) => p.severity === 'error');
    if (errors.length) throw new Error(`fixtures invalid: ${JSON.stringify(errors)}`);
    out.push(...hosts);
  }
  return out;
}
