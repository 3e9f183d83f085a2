// The observe parser on real output captured from a converged sandbox host.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { parseFacts } from '../../controller/observe/parse.js';
import { observeScript } from '../../controller/observe/script.js';
import { CONVERGED_OUTPUT, desiredFrom } from '../helpers/observed.js';

const d = desiredFrom();

describe('parseFacts', () => {
  const f = parseFacts(CONVERGED_OUTPUT, d);

  it('reads OS, user, Docker, Compose and curl', () => {
    expect(f.os).toEqual({ id: 'debian', versionId: '12', pretty: 'Debian GNU/Linux 12 (bookworm)' });
    expect(f.uid).toBe(0);
    expect(f.docker).toEqual({ installed: true, running: true, version: '20.10.24+dfsg1' });
    expect(f.compose).toBe('standalone');
    expect(f.curl).toBe(true);
  });

  it('reads every managed file with mode, owner, size and the host-side hash, never its content', () => {
    expect(Object.keys(f.files).sort()).toEqual(d.files.map((x) => x.path).sort());
    for (const want of d.files) {
      expect(f.files[want.path]).toEqual({
        exists: true,
        kind: 'file',
        mode: want.mode,
        owner: 'root',
        group: 'root',
        size: Buffer.byteLength(want.content),
        sha256: createHash('sha256').update(want.content).digest('hex'),
      });
      // natsfleet's record holds its own display of what it wrote (no secret to hide here: bcrypt).
      expect(f.record?.rendered?.[want.path]).toBe(want.display);
    }
    for (const dir of d.dirs)
      expect(f.dirs[dir.path]).toEqual({ exists: true, mode: '0755', owner: 'root', group: 'root' });
  });

  it('reads the unit, containers, image, ports and monitoring', () => {
    expect(f.unit).toEqual({
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      unitFileState: 'enabled',
      needDaemonReload: false,
    });
    expect(f.container).toMatchObject({ exists: true, running: true, image: 'nats:2.9.10' });
    expect(f.imageId).toBe(f.container.imageId);
    expect(f.proxy).toMatchObject({ container: { exists: true, running: true }, volume: true });
    expect(f.ports).toEqual([
      { port: 4222, held: true, process: 'docker-proxy' },
      { port: 8222, held: true, process: 'docker-proxy' },
      { port: 80, held: true, process: 'nginx' },
      { port: 443, held: true, process: 'nginx' },
    ]);
    expect(f.healthz).toEqual({ status: 200, body: '{"status":"ok"}' });
    expect(f.varz).toMatchObject({ server_name: 'nats-sb-1', version: '2.9.10' });
    expect(f.jsz?.config).toMatchObject({ max_memory: 64 * 1024 ** 2, max_storage: 256 * 1024 ** 2 });
    expect(f.record).toMatchObject({ revision: 'fixture-rev', image: 'nats:2.9.10' });
    expect(f.pending).toBeUndefined();
    expect(f.lock).toBeUndefined();
  });

  it('a Docker engine that does not answer: installed, not running, nothing else known', () => {
    const down = CONVERGED_OUTPUT.replace(
      /(@@natsfleet docker-api\n)[\s\S]*?(\n@@natsfleet file)/,
      `$1${'\n@@http 000\n'.repeat(5)}$2`,
    );
    const g = parseFacts(down, d);
    expect(g.docker).toEqual({ installed: true, running: false, version: undefined });
    expect(g.container).toEqual({ exists: false });
    expect(g.imageId).toBeUndefined();
  });

  it('refuses truncated output (no end marker)', () => {
    expect(() => parseFacts(CONVERGED_OUTPUT.slice(0, 500), d)).toThrow(/incomplete/);
  });
});

describe('observeScript', () => {
  it('is one script that quotes every path and ends with the end marker', () => {
    const script = observeScript(d);
    expect(script.trimEnd().endsWith("echo '@@natsfleet end'")).toBe(true);
    expect(script).toContain("echo '@@natsfleet file /etc/nats/nats-server.conf'");
    // One curl for the Docker Engine API, one for NATS monitoring.
    expect(script).toContain(
      '--unix-socket /var/run/docker.sock -w "\\n@@http-$n %{http_code}\\n" http://docker/version http://docker/containers/nats/json http://docker/containers/nginx-certbot/json http://docker/images/nats:2.9.10/json http://docker/volumes/nginx_secrets',
    );
    // Monitoring where the running container publishes it (a new httpBind is not in effect before a restart).
    expect(script).toContain(`"http://$nf_mon/"healthz "http://$nf_mon/"varz "http://$nf_mon/"jsz`);
    expect(script).toContain('[ -n "$nf_mon" ] || nf_mon=127.0.0.1:8222');
    expect(script).not.toMatch(/\bdocker (inspect|image|version|volume|compose|info)/);
  });

  it('never reads a managed file back: only metadata and a hash computed on the host', () => {
    const script = observeScript(desiredFrom((doc) => (doc.spec.proxy.envFile = '/data/nginx/x.env')));
    for (const p of ['/etc/nats/nats-server.conf', '/data/nginx/x.env']) {
      expect(script).toContain(`sha256sum < ${p}`);
      const touching = script.split('\n').filter((l) => l.includes(p));
      for (const l of touching) expect(l).not.toMatch(/base64|head -c|\bcat\b/);
    }
  });
});

describe('observe in a real shell: what a pull request could point at', () => {
  it("a dedicated directory that is not natsfleet's is not looked at, not even its modes; once natsfleet's, it is", () => {
    const d = desiredFrom((doc) => {
      doc.spec.nats.confFile = '/srv/nats/conf/nats.conf';
      doc.spec.nats.dataDir = '/srv/nats/data';
      doc.spec.nats.jetstream.storeDir = '/srv/nats/data/js';
    });
    expect(d.claims).toEqual(['/srv/nats']);
    const root = mkdtempSync(join(tmpdir(), 'nf-observe-'));
    const claim = join(root, 'claim');
    const state = join(root, 'state');
    mkdirSync(join(claim, 'conf'), { recursive: true });
    mkdirSync(state);
    writeFileSync(join(claim, 'conf', 'nats.conf'), "someone else's\n");
    const script = observeScript(d).replaceAll('/srv/nats', claim).replaceAll('/var/lib/natsfleet', state);
    const observe = () =>
      parseFacts(execFileSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), d);
    const foreign = observe();
    expect(foreign.files[join(claim, 'conf', 'nats.conf')]).toEqual({ exists: true, kind: 'unowned' });
    expect(foreign.dirs[join(claim, 'conf')]).toEqual({ exists: true, unowned: true });
    writeFileSync(join(state, 'owned.dirs'), `${claim}\n`);
    const ours = observe();
    expect(ours.files[join(claim, 'conf', 'nats.conf')]).toMatchObject({ exists: true, kind: 'file', size: 15 });
    expect(ours.files[join(claim, 'conf', 'nats.conf')].sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a file larger than 1 MiB is not hashed', () => {
    const d = desiredFrom((doc) => (doc.spec.nats.confFile = '/srv/big/nats.conf'));
    const root = mkdtempSync(join(tmpdir(), 'nf-observe-'));
    writeFileSync(join(root, 'nats.conf'), Buffer.alloc(2 * 1024 * 1024));
    writeFileSync(join(root, 'owned.dirs'), `${root}\n`);
    const script = observeScript(d).replaceAll('/srv/big', root).replaceAll('/var/lib/natsfleet', root);
    const f = parseFacts(
      execFileSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
      d,
    );
    expect(f.files[join(root, 'nats.conf')]).toMatchObject({ exists: true, kind: 'file', size: 2 * 1024 * 1024 });
    expect(f.files[join(root, 'nats.conf')].sha256).toBeUndefined();
  });
});
