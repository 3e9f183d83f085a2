// The proxy's files keep every value's meaning: compose.yml strings are quoted (a volume named `true`
// is not a boolean), `$` is kept from Compose's interpolation, and values no quoting can keep (in the
// env file, the nginx server block, a mount) are refused with their field named.
import { describe, expect, it } from 'vitest';
import { load } from 'js-yaml';
import type { HostSpec } from '../../controller/manifest/host-spec.js';
import {
  composeString,
  proxySitePath,
  renderCompose,
  renderProxyEnv,
  renderProxySite,
} from '../../controller/render/proxy.js';
import { allGoodHosts } from '../helpers/fixtures.js';

/** A host with the proxy on, built from a fixture and changed directly: no schema in the way. */
function host(proxy: Partial<HostSpec['proxy']> = {}, nats: Partial<HostSpec['nats']> = {}): HostSpec {
  const base = allGoodHosts().find((h) => h.proxy.enabled)!;
  return { ...base, nats: { ...base.nats, ...nats }, proxy: { ...base.proxy, ...proxy } };
}

interface Compose {
  services: {
    nginx: {
      image: unknown;
      container_name: unknown;
      restart: unknown;
      network_mode: unknown;
      env_file: unknown[];
      volumes: unknown[];
    };
  };
  volumes: Record<string, { external: unknown }>;
}
const parse = (text: string) => load(text) as Compose;

const TRICKY = [
  '1e3',
  'true',
  'null',
  '0x10',
  '~',
  'yes',
  'off',
  '012',
  '1_000',
  '.inf',
  '- x',
  'a: b',
  '#c',
  '"q"',
  "'s'",
  '*ref',
  '&anchor',
  '!tag',
  '[1]',
  '{a: 1}',
  '@at',
  '`tick`',
  '%pct',
  '| block',
  '> folded',
  '? key',
  'back\\slash',
  'new\nline',
  'tab\tend',
  ' lead',
  'trail ',
  'é ü 日本',
  'emoji 😀',
  'del\u007fc1\u0085ls\u2028bom\ufeff',
  '',
];

describe('renderCompose', () => {
  it.each(['1e3', 'true', 'null', '0x10', '~'])('image %j is read back as that string', (image) => {
    const c = parse(renderCompose(host({ image })));
    expect(c.services.nginx.image).toBe(image);
  });

  it.each(['true', 'null', '0x10', '1e3', 'no', '1.5', '0o17'])(
    'secrets volume %j is read back as that string, as the key and in the mount',
    (secretsVolume) => {
      const c = parse(renderCompose(host({ secretsVolume })));
      expect(Object.keys(c.volumes)).toEqual([secretsVolume]);
      expect(c.volumes[secretsVolume]).toEqual({ external: true });
      expect(c.services.nginx.volumes[0]).toBe(`${secretsVolume}:/etc/letsencrypt`);
    },
  );

  it('every value is a string, the file stays readable and keeps its shape', () => {
    const h = host({ image: '1e3', secretsVolume: 'true', envFile: '/null', userConfDir: '/0x10' });
    const text = renderCompose(h);
    expect(text).toContain('    image: "1e3"\n');
    expect(text).toContain('  "true":\n    external: true\n');
    expect(parse(text)).toEqual({
      services: {
        nginx: {
          image: '1e3',
          container_name: 'nginx-certbot',
          restart: 'always',
          network_mode: 'host',
          env_file: ['/null'],
          volumes: ['true:/etc/letsencrypt', '/0x10:/etc/nginx/user_conf.d:ro'],
        },
      },
      volumes: { true: { external: true } },
    });
  });

  it.each(TRICKY)('a string with YAML syntax or odd characters survives: %j', (s) => {
    const c = parse(renderCompose(host({ image: s, envFile: s })));
    expect(c.services.nginx.image).toBe(s);
    expect(c.services.nginx.env_file).toEqual([s]);
  });

  it('doubles $ so that Compose does not interpolate it (Compose reads $$ as $)', () => {
    const c = parse(renderCompose(host({ image: 'reg/${HOME}:$TAG' })));
    expect(c.services.nginx.image).toBe('reg/$${HOME}:$$TAG');
    expect(String(c.services.nginx.image).replace(/\$\$/g, '$')).toBe('reg/${HOME}:$TAG');
  });

  it('refuses a volume name Compose would read as a host path, and a mount source with ":"', () => {
    for (const secretsVolume of ['~', '/etc', './x', '../x', 'a:b', ''])
      expect(() => renderCompose(host({ secretsVolume }))).toThrow(
        /^spec\.proxy\.secretsVolume: .* Docker volume name/,
      );
    for (const userConfDir of ['/a:/b', 'relative', '~/x'])
      expect(() => renderCompose(host({ userConfDir }))).toThrow(/^spec\.proxy\.userConfDir: /);
  });

  it('composeString is a YAML double-quoted scalar', () => {
    expect(composeString('nginx_secrets')).toBe('"nginx_secrets"');
    expect(composeString('a"b\\c\nd$e')).toBe('"a\\"b\\\\c\\nd$$e"');
    for (const s of TRICKY) expect(load(`v: ${composeString(s)}`)).toEqual({ v: s.replace(/\$/g, '$$$$') });
  });
});

describe('renderProxyEnv', () => {
  it('writes a plain e-mail as it is', () => {
    expect(renderProxyEnv(host({ email: 'ops+nats@example.com' }))).toContain('\nCERTBOT_EMAIL=ops+nats@example.com\n');
  });

  it.each(['a@b.c\nSTAGING=1', 'a@b.c #x', '$HOME@b.c', '"a"@b.c', ' a@b.c', "a'@b.c", 'a\\@b.c', ''])(
    'refuses an e-mail the env file would change: %j',
    (email) => {
      expect(() => renderProxyEnv(host({ email }))).toThrow(/^spec\.proxy\.email: /);
    },
  );

  it('refuses a missing e-mail instead of writing "undefined"', () => {
    expect(() => renderProxyEnv(host({ email: undefined }))).toThrow(/^spec\.proxy\.email: undefined/);
  });
});

describe('renderProxySite', () => {
  it('renders a domain as before', () => {
    const text = renderProxySite(host({ domain: 'nats-1.example.com' }));
    expect(text).toContain('    server_name nats-1.example.com;\n');
    expect(proxySitePath(host({ domain: 'nats-1.example.com' }))).toMatch(/\/nats-1\.example\.com\.conf$/);
  });

  it.each([
    'x.com; include /etc/shadow',
    'x.com\n    return 200',
    '$host.example.com',
    '../../etc/cron.d/x',
    'x.com{',
    'EXAMPLE.com',
    'localhost',
    '',
  ])('refuses a domain that is not a DNS name, in the server block and the file name: %j', (domain) => {
    expect(() => renderProxySite(host({ domain }))).toThrow(/^spec\.proxy\.domain: /);
    expect(() => proxySitePath(host({ domain }))).toThrow(/^spec\.proxy\.domain: /);
  });

  it('keeps a server name in its comment line and the port a number', () => {
    const text = renderProxySite(host({}, { serverName: 'a\nlocation / { return 200; }' }));
    expect(text).toContain('# TLS in front of NATS monitoring of a?location / { return 200; }.\n');
    expect(text.split('\n').filter((l) => l.includes('return 200'))).toHaveLength(1);
    expect(() => renderProxySite(host({}, { httpPort: '8222; return 200' as unknown as number }))).toThrow(
      /^spec\.nats\.httpPort: /,
    );
  });
});
