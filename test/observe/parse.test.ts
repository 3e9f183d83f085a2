// The observe parser on real output captured from a converged sandbox host.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { parseFacts } from '../../controller/observe/parse.js';
import { observeScript } from '../../controller/observe/script.js';
import { monitorScript } from '../../controller/observe/fact-table.js';
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

  describe('monitoring where the running container publishes it', () => {
    const nonce = 'ab'.repeat(12);
    const encode = (answers: [number, string][]) =>
      Buffer.from(
        `${nonce}\n${answers.map(([status, body]) => `${body}\n@@http-${nonce} ${status}\n`).join('')}`,
      ).toString('base64');
    const container = (hostPort: string) =>
      JSON.stringify({
        Id: 'c1',
        Image: 'sha256:i',
        Path: '/nats-server',
        State: { Running: true, StartedAt: 't' },
        Config: { Image: 'nats:2.9.10' },
        HostConfig: { PortBindings: { '8222/tcp': [{ HostIp: '', HostPort: hostPort }] } },
      });
    /** The observe output with the Docker API and monitoring (at the desired address) answering so. */
    const observed = (hostPort: string) =>
      CONVERGED_OUTPUT.replace(/@@natsfleet monitor\n[^\n]*\n/, '').replace(
        /(@@natsfleet docker-api\n)[^\n]*\n/,
        `$1${encode([
          [200, 'HTTP/1.1 200 OK\r\nApi-Version: 1.46\r\nServer: Docker/27.1.0 (linux)\r\n\r\nOK'],
          [200, container(hostPort)],
          [404, '{}'],
          [404, '{}'],
          [404, '{}'],
          [200, '{"status":"ok"}'],
          [200, '{"server_name":"at-the-desired-address"}'],
          [200, '{}'],
        ])}\n`,
      );

    it("at the desired address: the answers asked with the Docker API are used; the version is /_ping's Server header", () => {
      const f = parseFacts(observed('8222'), d);
      expect(f.docker.version).toBe('27.1.0');
      expect(f.container).toMatchObject({ running: true, monitorAddress: '127.0.0.1:8222', path: '/nats-server' });
      expect(f.varz).toEqual({ server_name: 'at-the-desired-address' });
      expect(f.healthz).toEqual({ status: 200, body: '{"status":"ok"}' });
    });

    it('elsewhere (a port change not in effect yet): those answers are not used; monitorScript asks there', () => {
      const f = parseFacts(observed('9222'), d);
      expect(f.container.monitorAddress).toBe('127.0.0.1:9222');
      expect(f.varz).toBeUndefined();
      expect(f.healthz).toBeUndefined();
      const again = monitorScript(d, '127.0.0.1:9222');
      expect(again).toContain('http://127.0.0.1:9222/healthz http://127.0.0.1:9222/varz http://127.0.0.1:9222/jsz');
      const answered = `${observed('9222')}\n@@natsfleet monitor\n${encode([
        [200, '{"status":"ok"}'],
        [200, '{"server_name":"where-it-runs"}'],
        [200, '{}'],
      ])}\n@@natsfleet end\n`;
      expect(parseFacts(answered, d).varz).toEqual({ server_name: 'where-it-runs' });
    });
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
    // ONE process for the Docker Engine API (the engine's version from /_ping's headers) and NATS monitoring:
    // perl where the host has it, else one curl.
    expect(script.match(/\bperl -e /g)).toHaveLength(1);
    expect(script).toContain(
      `"$n" 'i|/var/run/docker.sock|http://docker/_ping' '|/var/run/docker.sock|http://docker/containers/nats/json' ` +
        `'|/var/run/docker.sock|http://docker/containers/nginx-certbot/json' '|/var/run/docker.sock|http://docker/images/nats:2.9.10/json' ` +
        `'|/var/run/docker.sock|http://docker/volumes/nginx_secrets' '||http://127.0.0.1:8222/healthz' '||http://127.0.0.1:8222/varz' ` +
        `'||http://127.0.0.1:8222/jsz'; else curl `,
    );
    expect(script.match(/\bcurl -s/g)).toHaveLength(1);
    expect(script).toContain(
      'curl -s -m 3 -i --unix-socket /var/run/docker.sock -w "\\n@@http-$n %{http_code}\\n" http://docker/_ping ' +
        '--next -s -m 3 --unix-socket /var/run/docker.sock -w "\\n@@http-$n %{http_code}\\n" http://docker/containers/nats/json http://docker/containers/nginx-certbot/json http://docker/images/nats:2.9.10/json http://docker/volumes/nginx_secrets ' +
        '--next -s -m 3 -w "\\n@@http-$n %{http_code}\\n" http://127.0.0.1:8222/healthz http://127.0.0.1:8222/varz http://127.0.0.1:8222/jsz | head -c 4194304; fi 2>/dev/null',
    );
    expect(script).not.toMatch(/\bdocker (inspect|image|version|volume|compose|info)/);
    // Every path by one find, which runs one sha256sum; no per-file process.
    expect(script.match(/\bfind /g)).toHaveLength(1);
    expect(script.match(/\bsha256sum\b/g)).toHaveLength(1);
    expect(script).not.toMatch(/stat -c '%a|grep -E|id -u|\| awk/);
  });

  it('never reads a managed file back: only metadata and a hash computed on the host', () => {
    const script = observeScript(desiredFrom((doc) => (doc.spec.proxy.envFile = '/data/nginx/x.env')));
    for (const p of ['/etc/nats/nats-server.conf', '/data/nginx/x.env']) {
      expect(script).toContain(`set -- "$@" ${p}`);
      const touching = script.split('\n').filter((l) => l.includes(p));
      for (const l of touching) expect(l).not.toMatch(/base64|head -c|\bcat\b/);
    }
  });
});

describe('the NATS unit and the TLS renewal watch: one systemctl', () => {
  const tls = desiredFrom((doc) => (doc.spec.nats.tls = { enabled: true, source: 'proxy' }));
  const withUnit = (body: string) =>
    CONVERGED_OUTPUT.replace(/(@@natsfleet unit\n)(?:[A-Za-z]+=[^\n]*\n)*/, `$1${body}`);

  it('asks both units in one systemctl show, and reads each block as its own unit', () => {
    const script = observeScript(tls);
    expect(script.match(/\bsystemctl /g)).toHaveLength(1);
    expect(script).toContain('[ -f /etc/systemd/system/nats-tls-reload.path ] && nf_watch=nats-tls-reload.path');
    expect(script).toContain('systemctl show nats.service $nf_watch -p LoadState');
    const f = parseFacts(
      withUnit(
        'LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nNeedDaemonReload=no\n\n' +
          'LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\nNeedDaemonReload=no\n',
      ),
      tls,
    );
    // The first block is the NATS unit, as on the captured converged host (one block there).
    expect(f.unit).toEqual(parseFacts(CONVERGED_OUTPUT, d).unit);
    expect(f.unit.activeState).toBe('active');
    expect(f.tlsWatch).toEqual({ activeState: 'inactive', unitFileState: 'disabled' });
  });

  it('without TLS the watch is asked too when its unit file is there (a rollback starts it again by its state)', () => {
    expect(observeScript(d)).toContain('systemctl show nats.service $nf_watch -p LoadState');
    const f = parseFacts(
      withUnit(
        'LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nNeedDaemonReload=no\n\n' +
          'LoadState=loaded\nActiveState=active\nSubState=waiting\nUnitFileState=enabled\nNeedDaemonReload=no\n',
      ),
      d,
    );
    expect(f.unit.activeState).toBe('active');
    expect(f.tlsWatch).toEqual({ activeState: 'active', unitFileState: 'enabled' });
    // No unit file: only the NATS unit is asked, and the watch is not installed.
    expect(parseFacts(CONVERGED_OUTPUT, d).tlsWatch).toEqual({ activeState: 'inactive', unitFileState: '' });
  });

  it('in a real shell: the watch is asked only when its unit file exists', () => {
    const root = mkdtempSync(join(tmpdir(), 'nf-observe-'));
    const log = join(root, 'calls');
    const bin = join(root, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${log}\n`, { mode: 0o755 });
    const units = join(root, 'units');
    mkdirSync(units);
    // The script sets its PATH: the fake systemctl goes first in it.
    const script = observeScript(d)
      .replaceAll('/etc/systemd/system', units)
      .replace('export LC_ALL=C PATH=', `export LC_ALL=C PATH=${bin}:`);
    const observe = () => execFileSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    observe();
    writeFileSync(join(units, 'nats-tls-reload.path'), '[Path]\n');
    observe();
    expect(
      readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((c) => c.split(' -p ')[0]),
    ).toEqual(['show nats.service', 'show nats.service nats-tls-reload.path']);
  });

  it("no answer from systemd: both unknown, never the other unit's state", () => {
    const f = parseFacts(withUnit(''), tls);
    expect(f.unit.activeState).toBe('unknown');
    expect(f.tlsWatch).toEqual({ activeState: 'unknown', unitFileState: '' });
  });
});

describe('observe in a real shell: what a pull request could point at', () => {
  /** A host whose config and data live in /srv/NAME, and a temporary root with state/ and conf/ to map it to. */
  function dedicated(name: string) {
    const d = desiredFrom((doc) => {
      doc.spec.nats.confFile = `/srv/${name}/conf/nats.conf`;
      doc.spec.nats.dataDir = `/srv/${name}/data`;
      doc.spec.nats.jetstream.storeDir = `/srv/${name}/data/js`;
    });
    const root = mkdtempSync(join(tmpdir(), 'nf-observe-'));
    const state = join(root, 'state');
    const conf = join(root, 'conf');
    mkdirSync(state);
    mkdirSync(conf);
    return { d, root, state, conf };
  }

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

  it('one find reads every path as the per-file tests did: a file, a link, a directory, nothing; old files listed', () => {
    const { d, root, state, conf } = dedicated('kinds');
    writeFileSync(join(conf, 'nats.conf'), 'x\n');
    writeFileSync(join(conf, 'old.conf'), 'old\n');
    execFileSync('ln', ['-s', join(conf, 'nats.conf'), join(conf, 'link.conf')]);
    mkdirSync(join(conf, 'dir.conf'));
    writeFileSync(join(state, 'owned.dirs'), `${root}\n`);
    // natsfleet's list of what it wrote: an old file, a link, a directory, a gone file, and names never looked at.
    const listed = ['old.conf', 'link.conf', 'dir.conf', 'gone.conf'].map((f) => join(conf, f));
    writeFileSync(join(state, 'applied.files'), [...listed, 'relative', `${conf}/a b`, ''].join('\n'));
    const script = observeScript(d).replaceAll('/srv/kinds', root).replaceAll('/var/lib/natsfleet', state);
    const out = execFileSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const f = parseFacts(out, d);
    expect(f.files[join(conf, 'nats.conf')]).toMatchObject({
      exists: true,
      kind: 'file',
      size: 2,
      sha256: createHash('sha256').update('x\n').digest('hex'),
    });
    expect(f.files[join(conf, 'old.conf')]).toMatchObject({ exists: true, kind: 'file', size: 4 });
    expect(f.files[join(conf, 'link.conf')]).toEqual({ exists: true, kind: 'link' });
    expect(f.files[join(conf, 'dir.conf')]).toEqual({ exists: true, kind: 'other' });
    expect(f.files[join(conf, 'gone.conf')]).toEqual({ exists: false });
    expect(
      Object.keys(f.files).filter((p) => !p.startsWith('/etc') && !p.startsWith('/root') && !p.startsWith('/data')),
    ).toHaveLength(5);
    expect(f.dirs[join(root, 'data')]).toEqual({ exists: false });
    expect(f.dirs[conf]).toMatchObject({ exists: true, mode: '0755' });
    // The OS and uid, read by the shell itself.
    expect(f.os.id).not.toBe('');
    expect(f.uid).toBe(process.getuid!());
  });

  it("one find hashes every file: with hundreds of paths, find's lines and sha256sum's never split one another", () => {
    // 300 listed files of long names: find's own output is far past its stdio buffer before it starts
    // sha256sum, so a line it had not flushed would come out cut by sha256sum's lines.
    const { d, root, state, conf } = dedicated('many');
    writeFileSync(join(state, 'owned.dirs'), `${root}\n`);
    const listed = Array.from({ length: 300 }, (_, i) => join(conf, `${'long-file-name-'.repeat(6)}${i}.conf`));
    listed.forEach((p, i) => writeFileSync(p, `content ${i}\n`));
    writeFileSync(join(state, 'applied.files'), `${listed.join('\n')}\n`);
    const script = observeScript(d).replaceAll('/srv/many', root).replaceAll('/var/lib/natsfleet', state);
    const out = execFileSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const f = parseFacts(out, d);
    listed.forEach((p, i) =>
      expect(f.files[p], p).toMatchObject({
        exists: true,
        kind: 'file',
        size: `content ${i}\n`.length,
        sha256: createHash('sha256').update(`content ${i}\n`).digest('hex'),
      }),
    );
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
