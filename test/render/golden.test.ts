// Golden tests: every renderer's output for every example and fixture, committed under test/golden/.
// A change to a renderer shows up as a reviewed diff of these files.
import { describe, expect, it } from 'vitest';
import { renderHost } from '../../controller/render/desired.js';
import { redactNatsConfig, REDACTED } from '../../controller/secrets/redact.js';
import { allGoodHosts, FIXTURE_TOKEN, fixtureSecrets } from '../helpers/fixtures.js';

const hosts = allGoodHosts();

describe.each(hosts.map((h) => [h.name, h] as const))('%s', (name, host) => {
  const desired = renderHost(host, fixtureSecrets);

  it.each(desired.files.map((f) => [f.path, f] as const))('renders %s', async (path, file) => {
    await expect(file.content).toMatchFileSnapshot(`../golden/${name}${path}`);
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

  it('redacts token and password values, including ones natsfleet never knew', () => {
    const old = 'authorization {\n  token = old-unquoted-token\n}\n';
    expect(redactNatsConfig(config.content)).not.toContain(FIXTURE_TOKEN);
    expect(redactNatsConfig(config.content)).toContain(`token: "${REDACTED}"`);
    expect(redactNatsConfig(old)).toBe(`authorization {\n  token = "${REDACTED}"\n}\n`);
  });

  it('quotes bcrypt hashes (an unquoted $ is a NATS variable) and keeps 0644', () => {
    const us = hosts.find((h) => h.name === 'nats-us-1')!;
    const f = renderHost(us, fixtureSecrets).files.find((x) => x.id === 'nats-config')!;
    expect(f.content).toMatch(/password: "\$2b\$11\$[^"]+"/);
    expect(f.mode).toBe('0644');
  });

  it('fails clearly, naming the field, when an {env} secret is missing or unsafe', () => {
    const missing = () =>
      renderHost(eu, (ref, field) => {
        throw new Error(`${field}: environment variable ${ref.env} is not set`);
      });
    expect(missing).toThrow('spec.nats.auth.token: environment variable NATS_EU1_TOKEN is not set');
  });
});
