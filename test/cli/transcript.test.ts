// The CLI's error paths as a user meets them: the real binary (bin/natsfleet.js, as installed) run as a
// process, its exact stderr and exit code, nothing on stdout for a usage error, never a stack trace or
// an errno text. The hosts are in-process (a closed port, an SSH server with another key): no Docker.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fixtures.js';
import { closeMisbehavingHosts, fakeHost } from '../helpers/misbehaving-hosts.js';
import { formatHostKey, fingerprint, keyBlob } from '../../controller/manifest/host-key.js';
import { generateKeyPairSync } from '../helpers/ssh-keys.js';

const run = promisify(execFile);
const BIN = join(ROOT, 'bin/natsfleet.js');
const dir = mkdtempSync(join(tmpdir(), 'nf-transcript-'));
const { parseKey } = ssh2.utils;

/** An ECDSA key (ssh2 parses every one it generates back), as "<type> <base64>" and as a private key. */
const keyPair = () => {
  const k = generateKeyPairSync('ecdsa', { bits: 256 });
  const parsed = parseKey(k.public);
  if (parsed instanceof Error) throw parsed;
  return { public: formatHostKey(parsed.getPublicSSH()), private: k.private };
};
const client = keyPair();
const hostKey = keyPair();
const pinned = keyPair();
const keyFile = join(dir, 'id_ecdsa');

async function natsfleet(...args: string[]) {
  try {
    const r = await run('node', [BIN, ...args], {
      cwd: dir,
      env: { ...process.env, NATS_T: 'transcript-token', NATSFLEET_SSH_KEY: '', NO_COLOR: '1' },
      timeout: 60_000,
    });
    return { code: 0, out: r.stdout.trimEnd(), err: r.stderr.trimEnd() };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout.trimEnd(), err: x.stderr.trimEnd() };
  }
}

function hostsWith(name: string, port: number, key: string): string {
  const hosts = join(dir, `hosts-${name}`);
  mkdirSync(hosts, { recursive: true });
  writeFileSync(
    join(hosts, `${name}.yaml`),
    [
      'apiVersion: natsfleet/v1alpha1',
      'kind: NatsHost',
      `metadata: {name: ${name}}`,
      'spec:',
      `  ssh: {host: 127.0.0.1, port: ${port}, hostKey: "${key}"}`,
      '  nats: {image: "nats:2.10.22", auth: {token: {env: NATS_T}}}',
      '',
    ].join('\n'),
  );
  return hosts;
}

let sshPort = 0;
beforeAll(async () => {
  writeFileSync(keyFile, client.private, { mode: 0o600 });
  mkdirSync(join(dir, 'empty'));
  sshPort = (await fakeHost({ hostKeys: [hostKey.private] })).port;
});
afterAll(() => closeMisbehavingHosts());

describe('usage errors: stderr, exit 1, a hint, nothing on stdout', () => {
  it.each([
    [['plan', '--bogus'], "error: unknown option '--bogus'\n(run with --help for usage)"],
    [['statuss'], "error: unknown command 'statuss'\n(Did you mean status?)\n(run with --help for usage)"],
    [['hostkey', 'scan'], "error: missing required argument 'host'\n(run with --help for usage)"],
    [
      ['plan', '-o', 'yaml'],
      "error: option '-o, --output <format>' argument 'yaml' is invalid. Allowed choices are text, json.\n(run with --help for usage)",
    ],
    [['unlock'], 'error: unlock needs --host NAME (repeatable): which host to unlock'],
    [['plan', '--hosts', 'missing'], 'error: missing: no such directory'],
    [['plan', '--hosts', 'empty'], 'error: empty: no manifests (*.yaml) found: nothing to do (pass --hosts DIR)'],
    [['validate', 'empty'], ''],
    [
      ['plan', '-l', 'region=e u'],
      `error: option '-l, --selector <labels>' argument 'region=e u' is invalid. "region=e u": "e u" is not a label ` +
        'value\n(run with --help for usage)',
    ],
  ])('natsfleet %j', async (args, message) => {
    const r = await natsfleet(...args);
    if (args[0] === 'validate') {
      // validate prints its verdict on stdout (it is the command's result), and exits 1.
      expect(r.out).toBe('empty: error: no manifests (*.yaml) found');
      expect(r.code).toBe(1);
      return;
    }
    expect(r.err).toBe(message);
    expect(r.out).toBe('');
    expect(r.code).toBe(1);
  });

  it('a selector that matches nothing says so', async () => {
    const hosts = hostsWith('h0', 1, pinned.public);
    const r = await natsfleet('status', '--hosts', hosts, '--ssh-key', keyFile, '-l', 'region=mars');
    expect([r.err, r.code]).toEqual([`error: no host in ${hosts} matches region=mars`, 1]);
  });
});

describe('hosts that cannot be reached, said plainly', () => {
  it('an unreachable host: Unknown with the reason, exit 1', async () => {
    const hosts = hostsWith('h1', 1, pinned.public);
    const r = await natsfleet('plan', '--hosts', hosts, '--ssh-key', keyFile);
    expect(r.out).toBe(
      'h1: Unknown: root@127.0.0.1:1: connection refused: no SSH server listens on port 1\n' +
        'Plan: 0 host(s) to change, 0 unchanged, 0 blocked, 1 unreachable.',
    );
    expect(r.code).toBe(1);
    const s = await natsfleet('status', '--hosts', hosts, '--ssh-key', keyFile, '-o', 'json');
    expect(JSON.parse(s.out)[0]).toMatchObject({
      host: 'h1',
      health: 'Unknown',
      reason: 'unreachable: root@127.0.0.1:1: connection refused: no SSH server listens on port 1',
    });
  });

  it('a host presenting another key than the pinned one: refused before authentication, exit 1', async () => {
    const hosts = hostsWith('h2', sshPort, pinned.public);
    const r = await natsfleet('plan', '--hosts', hosts, '--ssh-key', keyFile);
    expect(r.out.split('\n')[0]).toBe(
      `h2: Unknown: root@127.0.0.1:${sshPort}: host key mismatch: the host presented ` +
        `${fingerprint(keyBlob(hostKey.public))} (${hostKey.public.slice(0, 24)}...), the manifest pins ` +
        `${fingerprint(keyBlob(pinned.public))}; refusing to connect`,
    );
    expect(r.code).toBe(1);
  });

  it('a missing SSH key file: one line naming it, before any host is contacted', async () => {
    const hosts = hostsWith('h3', sshPort, hostKey.public);
    const r = await natsfleet('plan', '--hosts', hosts, '--ssh-key', join(dir, 'nope'));
    expect(r.err).toMatch(new RegExp(`^error: .*${join(dir, 'nope').replace(/[/.]/g, '\\$&')}.*`));
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.out).toBe('');
    expect(r.code).toBe(1);
  });

  it('a passphrase key without its passphrase (no terminal): one line, no host contacted', async () => {
    const encrypted = join(dir, 'id_encrypted');
    execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', 'a passphrase', '-f', encrypted]);
    const hosts = hostsWith('h5', sshPort, hostKey.public);
    const r = await natsfleet('plan', '--hosts', hosts, '--ssh-key', encrypted);
    expect(r).toEqual({
      code: 1,
      out: '',
      err: `error: SSH key ${encrypted} is encrypted: set NATSFLEET_SSH_PASSPHRASE or run on a terminal to be asked for its passphrase`,
    });
  });

  it('hostkey scan: the refused port, and a ready hostKey line with its fingerprint', async () => {
    expect(await natsfleet('hostkey', 'scan', '127.0.0.1:1')).toEqual({
      code: 1,
      out: '',
      err: 'error: 127.0.0.1:1: connection refused: no SSH server listens on port 1',
    });
    const r = await natsfleet('hostkey', 'scan', `127.0.0.1:${sshPort}`);
    expect(r.out).toBe(
      [
        `# 127.0.0.1:${sshPort} presents ecdsa-sha2-nistp256 ${fingerprint(keyBlob(hostKey.public))}`,
        '# compare it on the host: ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub',
        `hostKey: ${hostKey.public}`,
      ].join('\n'),
    );
    expect(r.code).toBe(0);
  });
});
