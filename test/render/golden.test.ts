// Golden tests: every renderer's output for every example and fixture, committed under test/golden/.
// A change to a renderer shows up as a reviewed diff of these files.
import { describe, expect, it } from 'vitest';
import { renderHost } from '../../controller/render/desired.js';
import { policyResolver } from '../../controller/secrets/resolve.js';
import { DEFAULT_SECRET_POLICY } from '../../controller/manifest/secret-policy.js';
import { allGoodHosts, FIXTURE_TOKEN, fixtureSecrets } from '../helpers/fixtures.js';

const hosts = allGoodHosts();

describe.each(hosts.map((h) => [h.name, h] as const))('%s', (name, host) => {
  const desired = renderHost(host, fixtureSecrets);

  it.each(desired.files.map((f) => [f.path, f] as const))('renders %s', async (path, file) => {
    // A file holding a secret is kept as its display (the secret's reference): no secret in a snapshot.
    await expect(file.sensitive ? file.display : file.content).toMatchFileSnapshot(`../golden/${name}${path}`);
  });

  it('lists files with modes and owners, and directories', async () => {
    const listing = [
      ...desired.dirs.map((d) => `dir  ${d.mode} ${d.owner}:${d.group} ${d.path}`),
      ...desired.files.map((f) => `file ${f.mode} ${f.owner}:${f.group} ${f.path}${f.sensitive ? ' (sensitive)' : ''}`),
    ].join('\n');
    await expect(`${listing}\n`).toMatchFileSnapshot(`../golden/${name}/LISTING`);
  });
});

describe('secrets', () => {
  const eu = hosts.find((h) => h.name === 'nats-eu-1')!;
  const config = renderHost(eu, fixtureSecrets).files.find((f) => f.id === 'nats-config')!;

  it('puts an {env} token in the config, quoted, and keeps the file from other users', () => {
    expect(config.content).toContain(`token: "${FIXTURE_TOKEN}"`);
    expect(config.mode).toBe('0600');
    expect(config.sensitive).toBe(true);
  });

  it('shows the same model with the secret replaced by its reference, never the value', () => {
    expect(config.display).not.toContain(FIXTURE_TOKEN);
    expect(config.display).toContain('token: "<secret:env:NATS_EU1_TOKEN>"');
    expect(config.display.replace('<secret:env:NATS_EU1_TOKEN>', FIXTURE_TOKEN)).toBe(config.content);
  });

  it('quotes bcrypt hashes (an unquoted $ is a NATS variable) and keeps 0644', () => {
    const us = hosts.find((h) => h.name === 'nats-us-1')!;
    const f = renderHost(us, fixtureSecrets).files.find((x) => x.id === 'nats-config')!;
    expect(f.content).toMatch(/password: "\$2b\$11\$[^"]+"/);
    expect(f.mode).toBe('0644');
  });

  it('fails clearly, naming the field, when an {env} secret is missing', async () => {
    const resolve = await policyResolver([eu], DEFAULT_SECRET_POLICY, {});
    expect(() => renderHost(eu, resolve)).toThrow(
      'spec.nats.auth.token: environment variable NATS_EU1_TOKEN is not set',
    );
  });

  it('refuses, naming the field, a secret the policy does not allow, before reading anything', async () => {
    const devZero = { ...eu, nats: { ...eu.nats, auth: { token: { file: '/dev/zero' } } } };
    const resolve = await policyResolver([devZero], DEFAULT_SECRET_POLICY, {});
    expect(() => renderHost(devZero, resolve)).toThrow(
      'spec.nats.auth.token: {file: /dev/zero} is not allowed: secret files must lie in /etc/natsfleet/secrets/',
    );
  });
});
