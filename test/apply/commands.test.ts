// Commands are data: the exact shell natsfleet sends, with every argument quoted. The scripts that
// write are also run in a real shell with failures injected (a write that fails, a write that
// silently truncates, a planted link, a full lock directory): none may install anything.
import { describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  CONFIG_REJECTED,
  dirLines,
  execConfigTest,
  finalizeScript,
  installScript,
  lockAcquire,
  lockRelease,
  lockReleaseAbandoned,
  lockReportScript,
  lockTakeOver,
  LOCK_HELD,
  parseHeldLock,
  prepareScript,
  PULL_FAILED,
  rollbackScript,
  stagedPath,
  stageScript,
  stepCommand,
  STRICT_PRELUDE,
  strict,
  testConfigScript,
  verifyScript,
  writeVerified,
} from '../../controller/apply/commands.js';
import { echoMarker, httpAnswers, Marked, VERIFY } from '../../controller/observe/protocol.js';
import { verificationIn } from '../../controller/apply/verify.js';
import { remoteScript, sh, shQuote } from '../../controller/shell/quote.js';
import { STATE_DIR } from '../../controller/observe/host-layout.js';
import { TLS_RELOAD_PATH, TLS_RELOAD_UNIT, TLS_WATCH_PATH, TLS_WATCH_UNIT } from '../../controller/render/tls.js';
import { desiredFrom, factsFrom } from '../helpers/observed.js';
import { pathWithoutPerl } from '../helpers/no-perl.js';
import type { HostFacts } from '../../controller/observe/facts.js';

const d = desiredFrom();
const TOKEN = 'a1b2c3d4e5f6a7b8c9d0';

/** A PATH of this machine's programs but perl (the scripts then take their curl branch). */
const NO_PERL = pathWithoutPerl();

/**
 * Runs a script in a real /bin/sh, with natsfleet's state directory moved to `state` and PATH extended
 * (without perl when `noPerl`).
 */
function run(script: string, o: { state?: string; path?: string; noPerl?: boolean } = {}) {
  const text = o.state ? script.replaceAll(STATE_DIR, o.state) : script;
  const base = o.noPerl ? NO_PERL : process.env.PATH;
  const env = { ...process.env, PATH: `${o.path ? `${o.path}:` : ''}${base}` };
  return spawnSync('sh', ['-s'], { input: remoteScript(text), encoding: 'utf8', env });
}

/** A directory of fake commands that shadow the real ones. */
function fakeBin(cmds: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nf-fakebin-'));
  for (const [name, body] of Object.entries(cmds)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

const me = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();

describe('quoting', () => {
  it('quotes anything that is not a plain word', () => {
    expect(sh('echo', 'a b', "it's", '$(id)', '')).toBe(`echo 'a b' 'it'\\''s' '$(id)' ''`);
    expect(shQuote('/etc/nats/nats-server.conf')).toBe('/etc/nats/nats-server.conf');
  });
});

describe('verified writes (real shell)', () => {
  const content = "content with 'quotes' and $(x)\n";

  it('write, flush, check size and hash, then rename: the target has exactly the content, nothing staged is left', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-write-'));
    const target = join(dir, 'f.conf');
    writeFileSync(target, 'old\n');
    const r = run(strict(...writeVerified(target, content, TOKEN, '0640')));
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe(content);
    expect(statSync(target).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['f.conf']);
  });

  it('a write that fails (disk full) ends the script: the live file is untouched, the error is said', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-write-'));
    const target = join(dir, 'f.conf');
    writeFileSync(target, 'live\n');
    const bin = fakeBin({ base64: 'cat >/dev/null; echo "base64: write error: No space left on device" >&2; exit 1' });
    const r = run(strict(...writeVerified(target, content, TOKEN), 'echo reached-the-end'), { path: bin });
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('reached-the-end');
    expect(r.stderr).toContain('No space left on device');
    expect(readFileSync(target, 'utf8')).toBe('live\n');
  });

  it('a write that silently truncates (exit 0, half the bytes) is caught by the size check: never installed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-write-'));
    const target = join(dir, 'f.conf');
    writeFileSync(target, 'live\n');
    const bin = fakeBin({ base64: 'cat >/dev/null; printf half' });
    const r = run(strict(...writeVerified(target, content, TOKEN)), { path: bin });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`not ${Buffer.byteLength(content)} bytes as rendered`);
    expect(readFileSync(target, 'utf8')).toBe('live\n');
  });

  it('an empty write is refused: an empty config can never be installed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-write-'));
    const target = join(dir, 'nats.conf');
    writeFileSync(target, 'authorization { token: "t" }\n');
    const bin = fakeBin({ base64: 'cat >/dev/null; exit 0' });
    const r = run(strict(...writeVerified(target, content, TOKEN)), { path: bin });
    expect(r.status).not.toBe(0);
    expect(readFileSync(target, 'utf8')).toContain('authorization');
  });

  it('same size, other bytes: the hash check refuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-write-'));
    const target = join(dir, 'f.conf');
    const bin = fakeBin({ base64: `cat >/dev/null; printf '%s' '${'x'.repeat(Buffer.byteLength(content))}'` });
    const r = run(strict(...writeVerified(target, content, TOKEN)), { path: bin });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('content differs from the rendering');
    expect(existsSync(target)).toBe(false);
  });

  it('a link planted at the staged name is refused (created exclusively), its target untouched', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-write-'));
    const target = join(dir, 'f.conf');
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, stagedPath(target, TOKEN));
    const r = run(strict(...writeVerified(target, content, TOKEN)));
    expect(r.status).not.toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(existsSync(target)).toBe(false);
  });

  it('staged names are unpredictable (the apply token), beside the target', () => {
    expect(stagedPath('/etc/nats/nats-server.conf', 'f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f')).toBe(
      '/etc/nats/nats-server.conf.natsfleet-f0e1d2c3b4a59687',
    );
  });
});

describe('staging and ownership (real shell)', () => {
  it('records a claimed dedicated directory before creating it, and stages verified files', () => {
    const root = mkdtempSync(join(tmpdir(), 'nf-stage-'));
    const state = join(root, 'state');
    const claim = join(root, 'srv-nats');
    const file = { ...d.files[0], path: join(claim, 'conf', 'nats.conf'), owner: me, group: me };
    const desired = {
      ...d,
      claims: [claim],
      dirs: [{ path: join(claim, 'conf'), mode: '0755', owner: me, group: me }],
    };
    const r = run(stageScript(desired, [file], TOKEN), { state });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(state, 'owned.dirs'), 'utf8')).toBe(`${claim}\n`);
    expect(readFileSync(stagedPath(file.path, TOKEN), 'utf8')).toBe(file.content);
    expect(statSync(state).mode & 0o777).toBe(0o700);
    // A second staging does not record the directory again (it exists now).
    run(stageScript(desired, [], TOKEN), { state });
    expect(readFileSync(join(state, 'owned.dirs'), 'utf8')).toBe(`${claim}\n`);
  });

  describe('directories', () => {
    const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
    // chown and chmod that say they ran, then do it.
    const logged = fakeBin({
      chown: 'echo "chown $*" >> "$NF_LOG"; exec /bin/chown "$@"',
      chmod: 'echo "chmod $*" >> "$NF_LOG"; exec /bin/chmod "$@"',
    });
    const setup = () => {
      const root = mkdtempSync(join(tmpdir(), 'nf-dirs-'));
      const dirs = ['a', 'a/b', 'c'].map((p) => ({ path: join(root, p), mode: '0750', owner: me, group }));
      return { root, dirs, log: join(root, 'log') };
    };
    const runDirs = (dirs: ReturnType<typeof setup>['dirs'], log: string) =>
      spawnSync('sh', ['-s'], {
        input: remoteScript(strict(...dirLines(dirs))),
        encoding: 'utf8',
        env: { ...process.env, PATH: `${logged}:${process.env.PATH}`, NF_LOG: log },
      });
    const logOf = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8') : '');

    it('are made with their mode and owner, then left alone while they have them (no chown, no chmod)', () => {
      const { dirs, log } = setup();
      const first = runDirs(dirs, log);
      expect(first.status, first.stderr).toBe(0);
      for (const x of dirs) expect(statSync(x.path).mode & 0o7777).toBe(0o750);
      expect(logOf(log).split('\n').filter(Boolean)).toHaveLength(6);
      rmSync(log);
      expect(runDirs(dirs, log).status).toBe(0);
      expect(logOf(log)).toBe('');
      // One of them changed by hand: set again.
      chmodSync(dirs[1].path, 0o777);
      expect(runDirs(dirs, log).status).toBe(0);
      expect(statSync(dirs[1].path).mode & 0o7777).toBe(0o750);
      expect(logOf(log)).toContain(`chmod 0750 ${dirs[1].path}`);
    });

    it('none is a link, nor leads elsewhere through one: refused before any chown or chmod', () => {
      const { root, dirs, log } = setup();
      const elsewhere = mkdtempSync(join(tmpdir(), 'nf-elsewhere-'));
      symlinkSync(elsewhere, join(root, 'a'));
      const r = runDirs(dirs, log);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`natsfleet: ${dirs[0].path} is a symbolic link`);
      // Only a directory in the path is a link: found by realpath.
      rmSync(join(root, 'a'));
      const parent = mkdtempSync(join(tmpdir(), 'nf-parent-'));
      mkdirSync(join(elsewhere, 'b'));
      const deep = [{ ...dirs[0], path: join(parent, 'x', 'b') }];
      symlinkSync(elsewhere, join(parent, 'x'));
      const deeper = runDirs(deep, log);
      expect(deeper.status).toBe(1);
      expect(deeper.stderr).toContain('leads elsewhere through a link');
      expect(logOf(log)).toBe('');
      expect(statSync(join(elsewhere, 'b')).mode & 0o777).not.toBe(0o750);
    });
  });
});

describe('service steps', () => {
  it('are plain systemctl/docker lines; compose runs in a subshell so a failed cd fails the line', () => {
    // A reload is the unit's ExecReload (docker kill --signal=HUP) asked of the Docker API: one process.
    const [reload] = stepCommand('reload', d, 'standalone');
    expect(reload).toMatch(/^if command -v perl >\/dev\/null 2>&1; then perl -e '/);
    expect(reload).toContain("' /var/run/docker.sock '/containers/nats/kill?signal=HUP'; else ");
    expect(reload).toContain(
      "else curl -sSf -m 30 -X POST --unix-socket /var/run/docker.sock 'http://docker/containers/nats/kill?signal=HUP' >/dev/null; fi",
    );
    expect(stepCommand('restart', d, 'standalone')).toEqual(['systemctl restart nats.service']);
    expect(stepCommand('daemon-reload', d, 'standalone')).toEqual(['systemctl daemon-reload']);
    expect(stepCommand('proxy-up', d, 'plugin')).toEqual([
      '( cd /root/nginx; docker compose up -d --remove-orphans ) 2>&1',
    ]);
    expect(stepCommand('proxy-up', d, 'standalone')).toEqual([
      '( cd /root/nginx; docker-compose up -d --remove-orphans ) 2>&1',
    ]);
    expect(stepCommand('proxy-reload', d, 'plugin')).toEqual([
      'i=0; until out=$(docker exec nginx-certbot nginx -t 2>&1); do case "$out" in *\'cannot load certificate\'*) ' +
        'i=$((i+1)); if [ $i -ge 60 ]; then echo "$out"; exit 1; fi; sleep 1;; *) echo "$out"; exit 1;; esac; done',
      'docker kill --signal=HUP nginx-certbot >/dev/null',
    ]);
  });

  it('reload: a POST to the Engine API, with perl or curl; refused (the container is not running), the step fails', async () => {
    const { createServer } = await import('node:http');
    const dir = mkdtempSync(join(tmpdir(), 'nf-hup-'));
    const socket = join(dir, 'docker.sock');
    const calls: string[] = [];
    let status = 204;
    const server = createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`);
      res.writeHead(status).end(status === 204 ? '' : '{"message":"Container nats is not running"}');
    });
    await new Promise<void>((r) => server.listen(socket, () => r()));
    const line = `${STRICT_PRELUDE}\n${stepCommand('reload', d, 'plugin')[0].replaceAll('/var/run/docker.sock', socket)}`;
    const hup = (path: string) =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile('sh', ['-c', line], { encoding: 'utf8', env: { PATH: path } }, (err, _out, stderr) =>
          resolve({ code: err ? Number(err.code) : 0, stderr }),
        ),
      );
    try {
      for (const path of [process.env.PATH!, NO_PERL]) {
        status = 204;
        expect((await hup(path)).code).toBe(0);
        status = 409;
        const refused = await hup(path);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/409/);
      }
      expect(calls).toEqual(Array(4).fill('POST /containers/nats/kill?signal=HUP'));
    } finally {
      server.close();
    }
  });

  it('proxy-reload waits out a certificate certbot is still obtaining, and fails at once on any other error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-fake-docker-'));
    // A docker whose `nginx -t` says the certificate is missing for the first two tries.
    writeFileSync(
      join(dir, 'docker'),
      '#!/bin/sh\nn=$(cat "$0.n" 2>/dev/null || echo 0); echo $((n+1)) > "$0.n"\n' +
        'if [ "$MODE" = other ]; then echo "unknown directive"; exit 1; fi\n' +
        'if [ $n -lt 2 ]; then echo \'cannot load certificate "/x": BIO_new_file() failed\'; exit 1; fi\necho ok\n',
      { mode: 0o755 },
    );
    const line = `${STRICT_PRELUDE}\n${stepCommand('proxy-reload', d, 'plugin')[0]}`;
    const run = (mode: string) =>
      spawnSync('sh', ['-c', line], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, MODE: mode },
        encoding: 'utf8',
      });
    const waited = run('cert');
    expect(waited.status).toBe(0);
    expect(readFileSync(join(dir, 'docker.n'), 'utf8').trim()).toBe('3');
    rmSync(join(dir, 'docker.n'));
    const other = run('other');
    expect(other.status).toBe(1);
    expect(other.stdout).toContain('unknown directive');
    expect(readFileSync(join(dir, 'docker.n'), 'utf8').trim()).toBe('1');
  });

  it('tests the staged config with the target image, offline, read-only, after checking it is the rendered one', () => {
    const script = testConfigScript(d, TOKEN);
    expect(script).toContain(
      'docker run --rm --network none -v /etc/nats:/etc/nats:ro nats:2.9.10 -t -c /etc/nats/nats-server.conf.natsfleet-a1b2c3d4e5f6a7b8 2>&1',
    );
    expect(script.indexOf('sha256sum < /etc/nats/nats-server.conf.natsfleet-a1b2c3d4e5f6a7b8')).toBeGreaterThan(0);
    expect(script.indexOf('sha256sum')).toBeLessThan(script.indexOf('docker run'));
    expect(script.startsWith('set -eu')).toBe(true);
  });

  describe('in the running container (docker exec) when it resolves the config as the server will', () => {
    const facts = factsFrom(d);
    const id = facts.container.id!;
    const staged = '/etc/nats/nats-server.conf.natsfleet-a1b2c3d4e5f6a7b8';
    const conf = [d.nats.confFile];
    const edited = (edit: (f: HostFacts) => void) => {
      const f = structuredClone(facts);
      edit(f);
      return f;
    };

    it('the converged host runs the target image with its mounts: tested there, by its own nats-server', () => {
      expect(facts.container).toMatchObject({ running: true, image: 'nats:2.9.10', path: '/nats-server' });
      const exec = execConfigTest(d, facts, conf, ['test-config', 'reload']);
      expect(exec).toEqual({ container: id, program: '/nats-server' });
      const script = testConfigScript(d, TOKEN, exec);
      // docker exec, asked of the Docker API: the container as observed, its own nats-server, the staged file.
      expect(script).toContain(`http://docker/containers/${id}/exec`);
      expect(script).toContain(`"Cmd":["/nats-server","-t","-c","${staged}"]`);
      expect(script).not.toContain('docker run');
      // The staged file is checked to be the rendered one first, as on the docker run path.
      expect(script.indexOf(`sha256sum < ${staged}`)).toBeGreaterThan(0);
      expect(script.indexOf('sha256sum')).toBeLessThan(script.indexOf('/exec'));
      // A restart on the same image and the same unit: the new container mounts the same; tested there too.
      expect(execConfigTest(d, facts, conf, ['test-config', 'restart'])).toEqual(exec);
    });

    it('anything that could resolve otherwise falls back to a new container of the target image', () => {
      const cases: [string, HostFacts, readonly string[], Parameters<typeof execConfigTest>[3]][] = [
        ['another image', edited((f) => (f.container.image = 'nats:2.10.27')), conf, ['test-config']],
        ['the tag names another image now', edited((f) => (f.imageId = 'sha256:other')), conf, ['test-config']],
        ['the image is pulled', facts, conf, ['pull', 'test-config', 'restart']],
        ['not running', edited((f) => (f.container.running = false)), conf, ['test-config']],
        ['no container', edited((f) => (f.container = { exists: false })), conf, ['test-config']],
        ['the unit changes', facts, [...conf, d.nats.unitPath], ['test-config', 'restart']],
        ['the unit waits for a daemon-reload', edited((f) => (f.unit.needDaemonReload = true)), conf, ['test-config']],
        ['another program', edited((f) => (f.container.path = '/usr/local/bin/docker-entrypoint.sh')), conf, []],
        [
          'the config directory mounted from elsewhere',
          edited((f) => (f.container.mounts!['/etc/nats'] = '/tmp/x')),
          conf,
          [],
        ],
        ['the config directory not mounted', edited((f) => delete f.container.mounts!['/etc/nats']), conf, []],
        [
          'a mount inside the config directory the unit does not make',
          edited((f) => (f.container.mounts!['/etc/nats/certs'] = '/root/certs')),
          conf,
          [],
        ],
      ];
      for (const [why, f, changed, steps] of cases) {
        expect(execConfigTest(d, f, changed, steps), why).toBeUndefined();
      }
      expect(testConfigScript(d, TOKEN, undefined)).toContain(
        `docker run --rm --network none -v /etc/nats:/etc/nats:ro nats:2.9.10 -t -c ${staged} 2>&1`,
      );
    });

    it('TLS directories must be mounted as the unit mounts them', () => {
      const tls = { ...d, nats: { ...d.nats, tlsMounts: ['type=bind,source=/etc/nats-tls,target=/tls,readonly'] } };
      expect(execConfigTest(tls, facts, conf, ['test-config'])).toBeUndefined();
      const mounted = edited((f) => (f.container.mounts!['/tls'] = '/etc/nats-tls'));
      expect(execConfigTest(tls, mounted, conf, ['test-config'])).toEqual({ container: id, program: '/nats-server' });
      const volume = { ...d, nats: { ...d.nats, tlsMounts: ['type=volume,source=nginx_secrets,target=/le,readonly'] } };
      const withVolume = edited((f) => (f.container.mounts!['/le'] = '/var/lib/docker/volumes/nginx_secrets/_data'));
      expect(execConfigTest(volume, withVolume, conf, ['test-config'])).toBeDefined();
      expect(execConfigTest(volume, mounted, conf, ['test-config'])).toBeUndefined();
    });
  });

  describe('staging, pull and test in one script (real shell, fake docker)', () => {
    const conf = d.files.find((f) => f.id === 'nats-config')!;
    /** The config at `root`'s nats.conf, owned by this user; a docker that logs its arguments. */
    function setup(docker: string, test = { out: 'configuration file is valid', code: 0, running: 0 }) {
      const root = mkdtempSync(join(tmpdir(), 'nf-prepare-'));
      const file = { ...conf, path: join(root, 'nats.conf'), owner: me, group: me };
      const desired = {
        ...d,
        claims: [],
        dirs: [],
        files: [file],
        nats: { ...d.nats, confFile: file.path, containerConfFile: file.path },
      };
      writeFileSync(file.path, 'authorization { token: "live" }\n');
      // The Docker API's exec, as curl asks it: create (an id), start (the output, then curl's -w text, then
      // the exec's state, asked with --next), and the state again while it says running (`running` times).
      const state = (running: boolean) =>
        `echo '{"ID":"e0e0","Running":${running},"ExitCode":${running ? 'null' : test.code},"ProcessConfig":{}}'`;
      const curl = [
        `printf 'curl %s\\n' "$*" >> ${root}/docker.log; w=; prev=`,
        'for a in "$@"; do [ "$prev" != -w ] || w=$a; prev=$a; done',
        `r=$(cat ${root}/running 2>/dev/null || echo ${test.running})`,
        'case "$*" in',
        `  */containers/*/exec*) echo '{"Id":"e0e0"}';;`,
        `  */exec/e0e0/start*) echo ${shQuote(test.out)}; printf "$w"; if [ "$r" -gt 0 ]; then echo $((r-1)) > ${root}/running; ${state(true)}; else ${state(false)}; fi;;`,
        `  */exec/e0e0/json*) if [ "$r" -gt 0 ]; then echo $((r-1)) > ${root}/running; ${state(true)}; else ${state(false)}; fi;;`,
        'esac',
      ].join('\n');
      const bin = fakeBin({ docker: `echo "docker $*" >> ${root}/docker.log\n${docker}`, curl });
      const log = () => (existsSync(join(root, 'docker.log')) ? readFileSync(join(root, 'docker.log'), 'utf8') : '');
      return { root, file, desired, bin, log, state: join(root, 'state') };
    }
    const exec = { container: 'c0ffee', program: '/nats-server' };

    it('a config nats-server rejects in the running container: CONFIG_REJECTED, nothing installed', () => {
      const staged = stagedPath(join(tmpdir(), 'x.conf'), TOKEN);
      const x = setup('exit 0', { out: `nats-server: ${staged}:3:1: unknown field`, code: 1, running: 0 });
      const script = prepareScript(x.desired, [x.file], TOKEN, { pull: false, test: true, exec });
      const r = run(script, { path: x.bin, state: x.state, noPerl: true });
      expect(r.status).toBe(CONFIG_REJECTED);
      const calls = x.log().trim().split('\n');
      expect(calls).toHaveLength(2);
      expect(calls[0]).toContain(`"Cmd":["/nats-server","-t","-c","${stagedPath(x.file.path, TOKEN)}"]`);
      expect(calls[0]).toContain('http://docker/containers/c0ffee/exec');
      expect(calls[1]).toMatch(/exec\/e0e0\/start .*--next .*exec\/e0e0\/json/);
      expect(readFileSync(x.file.path, 'utf8')).toBe('authorization { token: "live" }\n');
      // Its output is printed (apply reads the line number from it), not the engine's state after it.
      expect(r.stdout).toContain('@@step test-config');
      expect(r.stdout).toContain(':3:1: unknown field');
      expect(r.stdout).not.toContain('ExitCode');
    });

    it('an exec the engine still says is running is asked again; one that never ends is a refusal, not an acceptance', () => {
      const x = setup('exit 0', { out: 'configuration file is valid', code: 0, running: 2 });
      const script = prepareScript(x.desired, [x.file], TOKEN, { pull: false, test: true, exec });
      expect(run(script, { path: x.bin, state: x.state, noPerl: true }).status).toBe(0);
      // create, start (says running), then the state twice: running, then exited 0.
      expect(x.log().trim().split('\n')).toHaveLength(4);
      const y = setup('exit 0', { out: 'configuration file is valid', code: 0, running: 1000 });
      const again = prepareScript(y.desired, [y.file], TOKEN, { pull: false, test: true, exec });
      expect(run(again, { path: y.bin, state: y.state, noPerl: true }).status).toBe(CONFIG_REJECTED);
    });

    it('accepted: staged and tested, still not installed (install is the next script)', () => {
      const x = setup('echo "nats-server: configuration file is valid (sha256:' + 'ab'.repeat(32) + ')"');
      const r = run(prepareScript(x.desired, [x.file], TOKEN, { pull: false, test: true, exec }), {
        path: x.bin,
        state: x.state,
        noPerl: true,
      });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(stagedPath(x.file.path, TOKEN), 'utf8')).toBe(conf.content);
      expect(readFileSync(x.file.path, 'utf8')).toBe('authorization { token: "live" }\n');
    });

    it('with Perl: one process asks the Engine API (create, start, state) and says the same', async () => {
      const { createServer } = await import('node:http');
      /** A Docker Engine API on a Unix socket whose exec prints `out`, says running `running` times, exits `code`. */
      async function engine(out: string, code: number, running: number, createStatus = 201) {
        const dir = mkdtempSync(join(tmpdir(), 'nf-engine-'));
        const calls: string[] = [];
        const server = createServer((req, res) => {
          let body = '';
          req.on('data', (c) => (body += c));
          req.on('end', () => {
            calls.push(`${req.method} ${req.url} ${body}`);
            if (req.method === 'POST' && req.url === '/containers/c0ffee/exec')
              return res.writeHead(createStatus).end(createStatus === 201 ? '{"Id":"e0e0"}' : '{"message":"no"}');
            if (req.method === 'POST' && req.url === '/exec/e0e0/start')
              return res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' }).end(out);
            if (req.method === 'GET' && req.url === '/exec/e0e0/json') {
              const r = running-- > 0;
              return res.end(`{"ID":"e0e0","Running":${r},"ExitCode":${r ? 'null' : code},"ProcessConfig":{}}`);
            }
            res.writeHead(404).end('{}');
          });
        });
        const socket = join(dir, 'docker.sock');
        await new Promise<void>((r) => server.listen(socket, () => r()));
        return { socket, calls, close: () => server.close() };
      }
      const ask = async (e: Awaited<ReturnType<typeof engine>>) => {
        const x = setup('exit 0');
        const script = remoteScript(
          prepareScript(x.desired, [x.file], TOKEN, { pull: false, test: true, exec })
            .replaceAll(STATE_DIR, x.state)
            .replaceAll('/var/run/docker.sock', e.socket),
        );
        const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
          const p = execFile('sh', ['-s'], { encoding: 'utf8' }, (err, stdout) =>
            resolve({ code: err ? Number(err.code) : 0, stdout }),
          );
          p.stdin!.end(script);
        });
        e.close();
        return { ...r, live: readFileSync(x.file.path, 'utf8'), staged: stagedPath(x.file.path, TOKEN) };
      };
      const rejected = await engine('nats-server: x.conf:3:1: unknown field', 1, 0);
      const r = await ask(rejected);
      expect(r.code).toBe(CONFIG_REJECTED);
      expect(r.stdout).toContain(':3:1: unknown field');
      expect(r.stdout).not.toContain('ExitCode');
      expect(r.live).toBe('authorization { token: "live" }\n');
      expect(rejected.calls).toEqual([
        `POST /containers/c0ffee/exec {"AttachStdout":true,"AttachStderr":true,"Tty":true,"Cmd":["/nats-server","-t","-c","${r.staged}"]}`,
        'POST /exec/e0e0/start {"Detach":false,"Tty":true}',
        'GET /exec/e0e0/json ',
      ]);
      // Still running twice, then exit 0: accepted, after asking three times.
      const slow = await engine('configuration file is valid', 0, 2);
      expect((await ask(slow)).code).toBe(0);
      expect(slow.calls.filter((c) => c.startsWith('GET'))).toHaveLength(3);
      // Never ends, or cannot be created: a refusal, never an acceptance.
      expect((await ask(await engine('valid', 0, 1000))).code).toBe(CONFIG_REJECTED);
      const refused = await engine('valid', 0, 0, 404);
      expect((await ask(refused)).code).toBe(CONFIG_REJECTED);
      expect(refused.calls).toHaveLength(1);
    }, 20_000);

    it('a staged config cut short (disk full) never reaches the test', () => {
      const x = setup('exit 0');
      const bin = fakeBin({
        base64: 'cat >/dev/null; printf half',
        docker: `echo "docker $*" >> ${x.root}/docker.log`,
        curl: `echo "curl $*" >> ${x.root}/docker.log`,
      });
      const r = run(prepareScript(x.desired, [x.file], TOKEN, { pull: false, test: true, exec }), {
        path: bin,
        state: x.state,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('bytes as rendered');
      expect(x.log()).toBe('');
      expect(readFileSync(x.file.path, 'utf8')).toBe('authorization { token: "live" }\n');
    });

    it('a pull that fails: PULL_FAILED, and no test ran', () => {
      const x = setup('[ "$1" = pull ] && { echo "manifest unknown"; exit 1; }; exit 0');
      const r = run(prepareScript(x.desired, [x.file], TOKEN, { pull: true, test: true }), {
        path: x.bin,
        state: x.state,
      });
      expect(r.status).toBe(PULL_FAILED);
      expect(x.log()).toBe(`docker pull ${d.nats.image}\n`);
    });
  });

  it('install backs up, records pending actions, verifies and renames staged files, then runs steps', () => {
    const conf = d.files.find((f) => f.id === 'nats-config')!;
    const script = installScript(d, {
      install: [conf],
      remove: [],
      steps: ['test-config', 'reload'],
      composeKind: 'standalone',
      pending: { revision: 'r', since: 't', actions: ['reload'] },
      token: TOKEN,
    });
    const lines = script.split('\n');
    const at = (needle: string) => lines.findIndex((l) => l.includes(needle));
    const staged = stagedPath(conf.path, TOKEN);
    expect(at('cp -p /etc/nats/nats-server.conf /var/lib/natsfleet/backup/etc/nats/nats-server.conf')).toBeGreaterThan(
      0,
    );
    expect(at('/var/lib/natsfleet/pending.json')).toBeGreaterThan(at('cp -p'));
    expect(at(`sha256sum < ${staged}`)).toBeGreaterThan(at('pending.json'));
    expect(at(`mv -f ${staged} /etc/nats/nats-server.conf`)).toBeGreaterThan(at(`sha256sum < ${staged}`));
    expect(at('/containers/nats/kill?signal=HUP')).toBeGreaterThan(at(`mv -f ${staged}`));
    expect(script).not.toContain('test-config');
    expect(script.startsWith('set -eu')).toBe(true);
  });

  it('no builder hides a failure in an && chain', () => {
    const conf = d.files.find((f) => f.id === 'nats-config')!;
    const scripts = [
      stageScript(d, d.files, TOKEN),
      installScript(d, {
        install: [conf],
        remove: ['/etc/nats/old.conf'],
        steps: ['proxy-down', 'daemon-reload', 'restart', 'proxy-up', 'proxy-reload'],
        composeKind: 'plugin',
        pending: { revision: 'r', since: 't', actions: [] },
        token: TOKEN,
      }),
      finalizeScript({ revision: 'r', appliedAt: 't', by: 'b', image: 'i', files: {} }, TOKEN),
      lockAcquire({ owner: 'o', host: 'h', pid: 1, token: TOKEN, since: 's' }),
    ];
    for (const s of scripts) expect(s).not.toMatch(/[^|]&&/);
  });

  it("steps print on stderr: nothing a step runs can pass for natsfleet's marks or the verification's verdict", () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-install-'));
    const state = join(dir, 'state');
    mkdirSync(join(state, 'lock'), { recursive: true });
    writeFileSync(join(state, 'lock', 'info'), JSON.stringify({ token: TOKEN }));
    // A proxy image's compose up (or certbot) printing what verification would print, then succeeding.
    const bin = fakeBin({ docker: "printf '@@step done\\n@@answers x\\n@@proxy ok\\n@@verified 0\\n'" });
    const desired = { ...d, proxy: { ...d.proxy!, dir } };
    const script = installScript(desired, {
      install: [],
      remove: [],
      steps: ['proxy-up'],
      composeKind: 'plugin',
      pending: { revision: 'r', since: 't', actions: ['proxy-up'] },
      token: TOKEN,
      verify: `${echoMarker(VERIFY, 'healthz', 'timeout')}; exit 3`,
    });
    const r = run(script, { state, path: bin });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('@@verified 0');
    expect(r.stdout.split('\n').filter((l) => l === '@@step done')).toHaveLength(1);
    expect(r.stdout).not.toContain('@@proxy');
    expect(verificationIn(r.stdout)).toEqual({ stdout: '\n@@step done\n@@healthz timeout', code: 3 });
    // Output that does not end with the verdict (a script cut short) is no verification at all.
    expect(verificationIn(`${r.stdout}\nmore`)).toBeUndefined();
    expect(verificationIn('@@verified 0\n')).toBeUndefined();
  });

  describe('verification (real shell, fake curl)', () => {
    /**
     * A fake curl answering each URL from files in `dir` (healthz, varz, jsz, proxy: NAME.N for the Nth
     * process, else NAME), each followed by its -w text, as curl does; every process is logged.
     */
    function fakeCurl(dir: string) {
      return fakeBin({
        curl: [
          `d=${dir}; n=$(( $(cat $d/count 2>/dev/null || echo 0) + 1 )); echo $n > $d/count; printf "%s\\n" "$*" >> $d/log`,
          'w=; o=; out=; code=200',
          'for a in "$@"; do',
          '  if [ "$w" = 1 ]; then fmt=$a; w=; continue; fi',
          '  if [ "$o" = 1 ]; then out=$a; o=; continue; fi',
          '  case $a in',
          '    -w) w=1;;',
          '    -o) o=1;;',
          '    --next) out=; fmt=;;',
          '    https*) name=proxy;;',
          '    http*) name=${a##*/};;',
          '  esac',
          '  case $a in http*)',
          '    f=$d/$name.$n; [ -f $f ] || f=$d/$name; code=$(head -n1 $f); body=$(tail -n +2 $f)',
          '    [ "$out" = /dev/null ] || printf %s "$body"',
          '    [ -z "$fmt" ] || printf "$(echo "$fmt" | sed "s/%{http_code}/$code/")";;',
          '  esac',
          'done',
          'case $1 in -sfk) [ "$code" -lt 400 ] || exit 22;; esac',
        ].join('\n'),
      });
    }
    const setup = (files: Record<string, string>) => {
      const dir = mkdtempSync(join(tmpdir(), 'nf-verify-'));
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
      return { dir, path: fakeCurl(dir) };
    };
    const answersOf = (stdout: string) =>
      httpAnswers(new Marked(stdout, VERIFY).text('answers')).map((a) => `${a.status} ${a.body}`);
    const varz = (t: string) => `200\n{"server_name":"a", "config_load_time": "${t}"}`;

    it('one curl process asks /healthz, /varz, /jsz and the proxy; their answers come back in order', () => {
      const { dir, path } = setup({
        healthz: '200\n{"status":"ok"}',
        varz: varz('t1'),
        jsz: '200\n{}',
        proxy: '200\n',
      });
      const r = run(
        verifyScript({ lookup: 'false', address: '127.0.0.1:8222', timeoutSec: 5, proxyDomain: 'n.test' }),
        {
          path,
        },
      );
      expect(r.status).toBe(0);
      expect(answersOf(r.stdout)).toEqual([
        '200 {"status":"ok"}',
        '200 {"server_name":"a", "config_load_time": "t1"}',
        '200 {}',
        '200 ',
      ]);
      expect(new Marked(r.stdout, VERIFY).arg('proxy')).toBe('ok');
      expect(readFileSync(join(dir, 'count'), 'utf8').trim()).toBe('1');
      expect(readFileSync(join(dir, 'log'), 'utf8')).toContain('--resolve n.test:443:127.0.0.1');
    });

    it('after a reload, waits for a new config_load_time, not for the start time (the same value until then)', () => {
      const { dir, path } = setup({
        healthz: '200\nok',
        'varz.1': varz('old'),
        'varz.2': varz('old'),
        varz: varz('new'),
        jsz: '200\n{}',
      });
      const script = verifyScript({ lookup: 'false', address: '127.0.0.1:8222', timeoutSec: 5, reloadedFrom: 'old' });
      expect(script).toContain(`*'"config_load_time": "old"'*`);
      const r = run(script, { path });
      expect(r.status).toBe(0);
      expect(answersOf(r.stdout)[1]).toContain('"new"');
      expect(readFileSync(join(dir, 'count'), 'utf8').trim()).toBe('3');
      expect(verifyScript({ lookup: 'false', timeoutSec: 60 })).not.toContain('config_load_time');
    });

    it('/healthz never 200: exit 3 at the deadline, with what it answered; a proxy that never answers fails', () => {
      const { path } = setup({ healthz: '503\n{"status":"unavailable"}', varz: varz('t'), jsz: '200\n{}' });
      const r = run(verifyScript({ lookup: 'nf_mon=127.0.0.1:8222', timeoutSec: 1 }), { path });
      expect(r.status).toBe(3);
      expect(new Marked(r.stdout, VERIFY).arg('healthz')).toBe('timeout');
      expect(answersOf(r.stdout)[0]).toBe('503 {"status":"unavailable"}');
    });

    it('a proxy still starting is asked again on its own (curl -f), NATS is not asked again', () => {
      const { dir, path } = setup({
        healthz: '200\nok',
        varz: varz('t'),
        jsz: '200\n{}',
        'proxy.1': '502\n',
        'proxy.2': '502\n',
        proxy: '200\n',
      });
      const r = run(verifyScript({ lookup: 'false', address: 'a:1', timeoutSec: 5, proxyDomain: 'n.test' }), { path });
      expect(r.status).toBe(0);
      expect(new Marked(r.stdout, VERIFY).arg('proxy')).toBe('ok');
      const log = readFileSync(join(dir, 'log'), 'utf8').trim().split('\n');
      expect(log).toHaveLength(3);
      expect(log.slice(1).every((l) => l.startsWith('-sfk') && !l.includes('healthz'))).toBe(true);
    });
  });

  it('remote scripts run with stdin closed, so no command can eat the rest of the script', () => {
    const out = execFileSync('sh', ['-s'], { input: remoteScript('cat; echo after'), encoding: 'utf8' });
    expect(out).toBe('after\n');
  });
});

describe('rollback (real shell, fake systemctl and docker)', () => {
  /** A temporary root whose state directory holds this apply's lock, as the rollback script requires. */
  function lockedRoot() {
    const root = mkdtempSync(join(tmpdir(), 'nf-rollback-'));
    const state = join(root, 'state');
    mkdirSync(join(state, 'lock'), { recursive: true });
    writeFileSync(join(state, 'lock', 'info'), JSON.stringify({ token: TOKEN }));
    return { root, state };
  }

  /** Rolls back an apply that installed the unit file, in a temporary root; returns systemctl's and docker's calls. */
  function rollBack(o: { unitBefore: boolean; nothingBefore: boolean; enabledBefore?: boolean }) {
    const { root, state } = lockedRoot();
    const units = join(root, 'units');
    mkdirSync(units);
    const unit = join(units, d.nats.unit);
    writeFileSync(unit, 'the unit this apply installed');
    if (o.unitBefore) {
      mkdirSync(join(state, 'backup', units), { recursive: true });
      writeFileSync(join(state, 'backup', units, d.nats.unit), 'the unit before');
    }
    const log = join(root, 'calls');
    const bin = fakeBin({ systemctl: `echo "systemctl $*" >> ${log}`, docker: `echo "docker $*" >> ${log}` });
    const script = rollbackScript(d, {
      install: [d.nats.unitPath],
      composeKind: 'plugin',
      proxyTouched: false,
      nothingBefore: o.nothingBefore,
      enabledBefore: o.enabledBefore,
      token: TOKEN,
    }).replaceAll(dirname(d.nats.unitPath), units);
    const r = run(script, { state, path: bin });
    return { r, unit, calls: readFileSync(log, 'utf8').trim().split('\n') };
  }

  it('a first deploy: its unit stopped and disabled while its file says how, its container removed; nothing restarts', () => {
    const { r, unit, calls } = rollBack({ unitBefore: false, nothingBefore: true });
    expect(r.status, r.stderr).toBe(0);
    expect(calls).toEqual([
      'systemctl disable --now --quiet nats.service',
      'docker rm --force nats',
      'systemctl daemon-reload',
      'systemctl reset-failed nats.service',
    ]);
    expect(existsSync(unit)).toBe(false);
  });

  it('a unit the apply replaced is put back and restarted, not stopped first', () => {
    const { r, unit, calls } = rollBack({ unitBefore: true, nothingBefore: false });
    expect(r.status, r.stderr).toBe(0);
    expect(calls).toEqual(['systemctl daemon-reload', 'systemctl restart nats.service']);
    expect(readFileSync(unit, 'utf8')).toBe('the unit before');
  });

  it('a unit enabled before (a decommission disables it) is enabled again with the previous files', () => {
    const { r, calls } = rollBack({ unitBefore: true, nothingBefore: false, enabledBefore: true });
    expect(r.status, r.stderr).toBe(0);
    expect(calls).toEqual([
      'systemctl daemon-reload',
      'systemctl restart nats.service',
      'systemctl enable --quiet nats.service',
    ]);
  });

  it('an apply that turned TLS off: the renewal watch it stopped, enabled before, is back and started again', () => {
    const { root, state } = lockedRoot();
    const units = join(root, 'units');
    mkdirSync(units);
    // The apply deleted the watch's unit files (their backups stay) and installed the unit.
    for (const f of [d.nats.unit, TLS_WATCH_UNIT, TLS_RELOAD_UNIT]) {
      mkdirSync(join(state, 'backup', units), { recursive: true });
      writeFileSync(join(state, 'backup', units, f), `${f} before`);
    }
    writeFileSync(join(units, d.nats.unit), 'the unit this apply installed');
    const log = join(root, 'calls');
    const bin = fakeBin({ systemctl: `echo "systemctl $*" >> ${log}`, docker: `echo "docker $*" >> ${log}` });
    const script = (watchBefore: boolean) =>
      rollbackScript(d, {
        install: [d.nats.unitPath],
        remove: [TLS_WATCH_PATH, TLS_RELOAD_PATH],
        composeKind: 'plugin',
        proxyTouched: false,
        enabledBefore: true,
        watchBefore,
        token: TOKEN,
      }).replaceAll(dirname(d.nats.unitPath), units);
    const r = run(script(true), { state, path: bin });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(units, TLS_WATCH_UNIT), 'utf8')).toBe(`${TLS_WATCH_UNIT} before`);
    expect(readFileSync(join(units, TLS_RELOAD_UNIT), 'utf8')).toBe(`${TLS_RELOAD_UNIT} before`);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'systemctl daemon-reload',
      'systemctl restart nats.service',
      'systemctl enable --quiet nats.service',
      `systemctl enable --now --quiet ${TLS_WATCH_UNIT}`,
    ]);
    // A watch that was not enabled before stays as it was.
    rmSync(log);
    for (const f of [TLS_WATCH_UNIT, TLS_RELOAD_UNIT]) rmSync(join(units, f));
    expect(run(script(false), { state, path: bin }).status).toBe(0);
    expect(readFileSync(log, 'utf8')).not.toContain(TLS_WATCH_UNIT);
  });

  /**
   * Rolls back an apply that changed the proxy, its directories mapped into a temporary root (`dirs`: the
   * manifest's path -> the test's); docker's calls name the directory they ran in.
   */
  function proxyRollback(o: {
    desired: ReturnType<typeof desiredFrom>;
    install: string[];
    remove: string[];
    dirs: Record<string, string>;
  }) {
    const root = mkdtempSync(join(tmpdir(), 'nf-rollback-'));
    const at = (p: string) => Object.entries(o.dirs).reduce((q, [from, to]) => q.replaceAll(from, join(root, to)), p);
    const state = join(root, 'state');
    mkdirSync(join(state, 'lock'), { recursive: true });
    writeFileSync(join(state, 'lock', 'info'), JSON.stringify({ token: TOKEN }));
    for (const p of o.remove) {
      mkdirSync(dirname(at(p)), { recursive: true }); // the apply deleted the file, not its directory
      mkdirSync(dirname(join(state, 'backup', at(p))), { recursive: true });
      writeFileSync(join(state, 'backup', at(p)), `${p} before`);
    }
    for (const p of o.install) {
      mkdirSync(dirname(at(p)), { recursive: true });
      writeFileSync(at(p), 'installed by this apply');
    }
    const log = join(root, 'calls');
    const bin = fakeBin({ systemctl: `echo "systemctl $*" >> ${log}`, docker: `echo "docker $* (in $PWD)" >> ${log}` });
    const before = o.remove.find((p) => p.endsWith('/compose.yml'));
    const script = rollbackScript(o.desired, {
      install: o.install,
      remove: o.remove,
      composeKind: 'plugin',
      proxyTouched: true,
      proxyBefore: true,
      proxyDirBefore: before && dirname(before),
      token: TOKEN,
    });
    const r = run(at(script), { state, path: bin });
    const docker = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter((c) => c.startsWith('docker'))
      .map((c) => c.replace(root, '<root>'));
    return { r, docker, at };
  }

  it('an apply that turned the proxy off: its files are back and the previous proxy comes up from its directory', () => {
    const files = ['/root/nginx/compose.yml', '/data/nginx/nginx-certbot.env'];
    const { r, docker, at } = proxyRollback({
      desired: desiredFrom((doc) => (doc.spec.proxy.enabled = false)),
      install: [],
      remove: files,
      dirs: { '/root/nginx': 'old', '/data/nginx': 'data' },
    });
    expect(r.status, r.stderr).toBe(0);
    for (const f of files) expect(readFileSync(at(f), 'utf8')).toBe(`${f} before`);
    expect(docker).toEqual(['docker compose up -d --remove-orphans (in <root>/old)']);
  });

  it('an apply that moved the proxy to another directory: the new one goes, the previous one comes up', () => {
    const { r, docker, at } = proxyRollback({
      desired: desiredFrom((doc) => (doc.spec.proxy.dir = '/srv/proxy')),
      install: ['/srv/proxy/compose.yml'],
      remove: ['/root/nginx/compose.yml'],
      dirs: { '/srv/proxy': 'new', '/root/nginx': 'old' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(at('/srv/proxy/compose.yml'))).toBe(false);
    expect(readFileSync(at('/root/nginx/compose.yml'), 'utf8')).toBe('/root/nginx/compose.yml before');
    expect(docker).toEqual([
      `docker rm --force nginx-certbot (in ${process.cwd()})`,
      'docker compose up -d --remove-orphans (in <root>/old)',
    ]);
  });

  it('a takeover of a unit file elsewhere: the override goes, that unit restarts (never disabled: it is not ours)', () => {
    const { r, unit, calls } = rollBack({ unitBefore: false, nothingBefore: false });
    expect(r.status, r.stderr).toBe(0);
    expect(calls).toEqual(['systemctl daemon-reload', 'systemctl restart nats.service']);
    expect(existsSync(unit)).toBe(false);
  });
});

describe('the lock (real shell)', () => {
  const info = (token: string) => ({ owner: 'o', host: 'h', pid: 1, token, since: 's' });

  it('is taken in one rename, with its owner file; a second taker is told who holds it', () => {
    const state = join(mkdtempSync(join(tmpdir(), 'nf-lock-')), 'state');
    expect(run(lockAcquire(info('first-token')), { state }).status).toBe(0);
    const second = run(lockAcquire(info('second-token')), { state });
    expect(second.status).toBe(LOCK_HELD);
    const held = parseHeldLock(second.stdout);
    expect(held.info?.token).toBe('first-token');
    expect(held.ageSec).toBeGreaterThanOrEqual(0);
    expect(held.ageSec).toBeLessThan(60);
    expect(readdirSync(state).sort()).toEqual(['lock']);
  });

  it('a full disk leaves no ownerless lock behind', () => {
    const state = join(mkdtempSync(join(tmpdir(), 'nf-lock-')), 'state');
    const bin = fakeBin({ base64: 'cat >/dev/null; echo "No space left on device" >&2; exit 1' });
    const r = run(lockAcquire(info('t1')), { state, path: bin });
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBe(LOCK_HELD);
    expect(existsSync(join(state, 'lock'))).toBe(false);
    expect(readdirSync(state)).toEqual([]);
  });

  it('is released only with its own token', () => {
    const state = join(mkdtempSync(join(tmpdir(), 'nf-lock-')), 'state');
    run(lockAcquire(info('mine')), { state });
    expect(run(lockRelease('not-mine'), { state }).status).toBe(0);
    expect(existsSync(join(state, 'lock'))).toBe(true);
    expect(run(lockRelease('mine'), { state }).status).toBe(0);
    expect(existsSync(join(state, 'lock'))).toBe(false);
  });

  it('take-over moves the abandoned lock aside in one step and takes a new one; a lock that changed hands is left', () => {
    const state = join(mkdtempSync(join(tmpdir(), 'nf-lock-')), 'state');
    run(lockAcquire(info('dead-owner')), { state });
    const r = run(lockTakeOver('dead-owner', info('new-owner')), { state });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(state, 'lock', 'info'), 'utf8')).token).toBe('new-owner');
    const again = run(lockTakeOver('dead-owner', info('third')), { state });
    expect(again.status).toBe(LOCK_HELD);
    expect(JSON.parse(readFileSync(join(state, 'lock', 'info'), 'utf8')).token).toBe('new-owner');
    expect(readdirSync(state).sort()).toEqual(['lock']);
    mkdirSync(join(state, 'unused'));
  });

  it('a lock without owner data is taken over only as such: one that has an owner by then is left alone', () => {
    const state = join(mkdtempSync(join(tmpdir(), 'nf-lock-')), 'state');
    mkdirSync(join(state, 'lock'), { recursive: true });
    const r = run(lockTakeOver(undefined, info('new-owner')), { state });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(state, 'lock', 'info'), 'utf8')).token).toBe('new-owner');
    const again = run(lockReleaseAbandoned(undefined, 'x'), { state });
    expect(again.status).toBe(LOCK_HELD);
    expect(parseHeldLock(again.stdout).info?.token).toBe('new-owner');
  });

  it('the lock report says nothing without a lock, and owner and age with one', () => {
    const state = join(mkdtempSync(join(tmpdir(), 'nf-lock-')), 'state');
    mkdirSync(state, { recursive: true });
    expect(run(lockReportScript(), { state }).stdout).toBe('');
    run(lockAcquire(info('mine')), { state });
    expect(parseHeldLock(run(lockReportScript(), { state }).stdout).info?.token).toBe('mine');
  });
});
