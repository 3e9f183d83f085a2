// `natsfleet validate` and `natsfleet render` as an operator runs them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../controller/cli/main.js';
import { ROOT } from '../helpers/fixtures.js';

async function cli(...args: string[]) {
  const lines: string[] = [];
  const code = await main(['node', 'natsfleet', ...args], (l) => lines.push(l));
  return { code, out: lines.join('\n') };
}

describe('natsfleet validate', () => {
  it('exits 0 on the shipped examples', async () => {
    const r = await cli('validate', join(ROOT, 'hosts'));
    expect(r.out).toContain('6 manifest(s) valid (5 host(s), 1 cluster(s))');
    expect(r.code).toBe(0);
  });

  it('exits 1 with one line per problem naming file, line and field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-validate-'));
    const good = readFileSync(join(ROOT, 'hosts/nats-us-1.yaml'), 'utf8');
    writeFileSync(join(dir, 'nats-us-1.yaml'), good);
    writeFileSync(
      join(dir, 'bad.yaml'),
      good
        .replace('name: nats-us-1', 'name: bad')
        .replace('image: nats:2.10.22-alpine', 'image: "nats; reboot"\n    clientPort: 8222\n    httpPort: 8222'),
    );
    const r = await cli('validate', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      new RegExp(`^${dir}/bad.yaml:\\d+: error: spec.nats.image: must be a Docker image reference`, 'm'),
    );
    expect(r.out).toMatch(/1 error\(s\), 0 warning\(s\): 1 of 2 manifest\(s\) invalid/);
  });

  it('exits 1 on an empty directory', async () => {
    const r = await cli('validate', mkdtempSync(join(tmpdir(), 'nf-empty-')));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/no manifests/);
  });
});

describe('natsfleet render', () => {
  it('writes every artifact at its remote path with its mode, secrets from the environment', () => {
    const out = mkdtempSync(join(tmpdir(), 'nf-render-'));
    // Through the installed bin, as a user would run it.
    const r = spawnSync(
      'node',
      [join(ROOT, 'bin/natsfleet.js'), 'render', 'nats-eu-1', '--out', out, '--hosts', join(ROOT, 'hosts')],
      {
        encoding: 'utf8',
        env: { ...process.env, NATS_EU1_TOKEN: 'render-test-token' },
      },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const p of [
      'etc/nats/nats-server.conf',
      'etc/systemd/system/nats.service',
      'root/nginx/compose.yml',
      'data/nginx/nginx-certbot.env',
      'data/nginx/user_conf.d/nats-eu-1.example.com.conf',
    ]) {
      expect(statSync(join(out, p)).isFile()).toBe(true);
    }
    expect(readFileSync(join(out, 'etc/nats/nats-server.conf'), 'utf8')).toContain('token: "render-test-token"');
    expect(statSync(join(out, 'etc/nats/nats-server.conf')).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'root/nginx/compose.yml')).mode & 0o777).toBe(0o644);
  });

  it('refuses to render when a secret is missing, naming the field and variable', async () => {
    delete process.env.NATS_EU1_TOKEN;
    const out = mkdtempSync(join(tmpdir(), 'nf-render-'));
    const errors: string[] = [];
    const code = await main(
      ['node', 'natsfleet', 'render', 'nats-eu-1', '--out', out, '--hosts', join(ROOT, 'hosts')],
      () => {},
      (l) => errors.push(l),
    );
    expect(code).toBe(1);
    expect(errors.join('\n')).toContain('spec.nats.auth.token: environment variable NATS_EU1_TOKEN is not set');
  });

  it('renders a manifest given as a file', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nf-render-'));
    const r = await cli('render', join(ROOT, 'test/fixtures/hosts/minimal.yaml'), '--out', out);
    expect(r.code).toBe(0);
    expect(readFileSync(join(out, 'etc/nats/nats-server.conf'), 'utf8')).toContain('server_name: "minimal"');
  });
});

describe('generated types', () => {
  it('are up to date with the schema', () => {
    const r = spawnSync('node', [join(ROOT, 'scripts/gen-types.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
