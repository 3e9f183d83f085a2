// Every rendered file passes the real checker it will meet on a host: nats-server -t for NATS
// configs, nginx -t for server blocks (with generated certificates), systemd-analyze verify for units.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderHost } from '../../controller/render/desired.js';
import { allGoodHosts, fixtureSecrets } from '../helpers/fixtures.js';
import { selfSigned, selfSignedAt } from '../helpers/certs.js';

const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};
const rendered = allGoodHosts().map((h) => ({ host: h, desired: renderHost(h, fixtureSecrets) }));
const file = (d: (typeof rendered)[number], id: string) => d.desired.files.find((f) => f.id === id);

/** A self-signed certificate (c.pem) and its key (k.pem), for configs that point at TLS files. */
const certs = selfSigned('nats.example.com', 1);

describe('nats-server -t', () => {
  it.each(rendered.map((r) => [r.host.name, r] as const))('accepts the config of %s', (_n, r) => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-nats-'));
    const path = join(dir, 'nats-server.conf');
    // TLS material where the container would see it, moved under this directory (nats-server -t loads it).
    const config = file(r, 'nats-config')!.content.replace(/"(\/etc\/(?:letsencrypt|nats-tls)\/[^"]+)"/g, (_m, p) => {
      const at = join(dir, p);
      mkdirSync(join(at, '..'), { recursive: true });
      if (/key/.test(p)) copyFileSync(join(certs, 'k.pem'), at);
      else copyFileSync(join(certs, 'c.pem'), at);
      return `"${at}"`;
    });
    writeFileSync(path, config);
    const res = run('nats-server', ['-t', '-c', path]);
    expect(res.out).toContain('is valid');
    expect(res.code).toBe(0);
  });

  it('is a real check: an unquoted $ is a variable reference, token with user/password is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-nats-'));
    const check = (conf: string) => {
      writeFileSync(join(dir, 'x.conf'), conf);
      return run('nats-server', ['-t', '-c', join(dir, 'x.conf')]).code;
    };
    expect(check('authorization {\n  token: $abc$def\n}\n')).not.toBe(0);
    expect(check('authorization {\n  token: "$abc$def"\n}\n')).toBe(0);
    expect(check('authorization { token: "t", user: "a", password: "b" }\n')).not.toBe(0);
  });
});

describe('nginx -t', () => {
  const withProxy = rendered.filter((r) => file(r, 'proxy-site'));

  it('has hosts with the proxy to check', () => expect(withProxy.length).toBeGreaterThanOrEqual(2));

  it.each(withProxy.map((r) => [r.host.name, r] as const))('accepts the server block of %s', (_n, r) => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-nginx-'));
    const domain = r.host.proxy.domain!;
    const live = join(dir, 'letsencrypt', 'live', domain);
    mkdirSync(live, { recursive: true });
    mkdirSync(join(dir, 'letsencrypt', 'dhparams'));
    const openssl = (...args: string[]) => expect(run('openssl', args).code).toBe(0);
    selfSignedAt(domain, 1, join(live, 'privkey.pem'), join(live, 'fullchain.pem'));
    copyFileSync(join(live, 'fullchain.pem'), join(live, 'chain.pem'));
    openssl('dhparam', '-dsaparam', '-out', join(dir, 'letsencrypt', 'dhparams', 'dhparam.pem'), '2048');
    // The image's /etc/letsencrypt becomes this throwaway directory; nothing else in the block changes.
    const site = file(r, 'proxy-site')!.content.replaceAll('/etc/letsencrypt/', `${dir}/letsencrypt/`);
    writeFileSync(join(dir, 'site.conf'), site);
    writeFileSync(
      join(dir, 'nginx.conf'),
      `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  include ${dir}/site.conf;\n}\n`,
    );
    const res = run('nginx', ['-t', '-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);
    expect(res.out).toContain('syntax is ok');
    expect(res.out).toContain('test is successful');
    expect(res.code).toBe(0);
  });
});

describe('systemd-analyze verify', () => {
  it.each(rendered.map((r) => [r.host.name, r] as const))('accepts the unit of %s without warnings', (_n, r) => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-unit-'));
    writeFileSync(join(dir, 'nats.service'), file(r, 'nats-unit')!.content);
    const res = run('systemd-analyze', ['verify', join(dir, 'nats.service')]);
    expect(res.out.trim()).toBe('');
    expect(res.code).toBe(0);
  });

  const withTls = rendered.filter((r) => file(r, 'tls-watch'));
  it('has hosts with TLS to check', () => expect(withTls.length).toBeGreaterThanOrEqual(2));
  it.each(withTls.map((r) => [r.host.name, r] as const))('accepts the renewal watch of %s', (_n, r) => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-unit-'));
    writeFileSync(join(dir, 'nats.service'), file(r, 'nats-unit')!.content);
    writeFileSync(join(dir, 'nats-tls-reload.path'), file(r, 'tls-watch')!.content);
    writeFileSync(join(dir, 'nats-tls-reload.service'), file(r, 'tls-reload')!.content);
    const res = run('systemd-analyze', [
      'verify',
      join(dir, 'nats-tls-reload.path'),
      join(dir, 'nats-tls-reload.service'),
    ]);
    expect(res.out.trim()).toBe('');
    expect(res.code).toBe(0);
  });
});
