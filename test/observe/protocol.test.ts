// The marker protocol of the remote scripts: what the builders echo is what the one parser reads back
// (through a real shell), for observe's sections, verify's and apply's steps; and the fact table, each
// fact a shell fragment with its parser, covers every field of HostFacts.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  echoMarker,
  echoMarkerOf,
  httpAnswers,
  httpGroups,
  httpMany,
  Marked,
  MAX_HTTP_ANSWER_BYTES,
  markerLine,
  OBSERVE,
  parseMarked,
  STEP,
  VERIFY,
} from '../../controller/observe/protocol.js';
import { FACTS } from '../../controller/observe/fact-table.js';
import { parseFacts } from '../../controller/observe/parse.js';
import { observeScript } from '../../controller/observe/script.js';
import { installScript, verifyScript } from '../../controller/apply/commands.js';
import { CONVERGED_OUTPUT, desiredFrom } from '../helpers/observed.js';
import { pathWithoutPerl } from '../helpers/no-perl.js';

const shell = (script: string) => spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stdout;

describe('marker lines', () => {
  it('are echoed single-quoted on every channel', () => {
    expect(echoMarker(OBSERVE, 'file', '/etc/nats/nats-server.conf')).toBe(
      "echo '@@natsfleet file /etc/nats/nats-server.conf'",
    );
    expect(echoMarker(OBSERVE, 'end')).toBe("echo '@@natsfleet end'");
    expect(echoMarker(VERIFY, 'varz')).toBe("echo '@@varz'");
    expect(echoMarker(VERIFY, 'healthz', 'timeout')).toBe("echo '@@healthz timeout'");
    expect(echoMarker(STEP, 'daemon-reload')).toBe("echo '@@step daemon-reload'");
    expect(echoMarkerOf(OBSERVE, 'file', '$p')).toBe('echo "@@natsfleet file $p"');
  });

  it('read back through a real shell: name, argument and body, whatever the argument holds', () => {
    const out = shell(
      [
        'echo before',
        echoMarker(OBSERVE, 'os'),
        'echo ID=debian',
        echoMarker(OBSERVE, 'file', "/srv/it's $(id) a b"),
        "printf 'no newline'",
        'echo',
        'p=/etc/x.conf',
        echoMarkerOf(OBSERVE, 'file', '$p'),
        echoMarker(OBSERVE, 'end'),
      ].join('\n'),
    );
    expect(parseMarked(out, OBSERVE)).toEqual([
      { name: 'os', arg: '', body: ['ID=debian'] },
      { name: 'file', arg: "/srv/it's $(id) a b", body: ['no newline'] },
      { name: 'file', arg: '/etc/x.conf', body: [] },
      { name: 'end', arg: '', body: [''] },
    ]);
  });

  it('cut verify output and name the last step apply reached', () => {
    const verify = new Marked(shell(`${echoMarker(VERIFY, 'healthz', 'timeout')}; printf '{"status":"x"}'`), VERIFY);
    expect(verify.raw('healthz')).toBe('{"status":"x"}');
    expect(verify.raw('varz')).toBeUndefined();
    const steps = parseMarked(
      shell([echoMarker(STEP, 'install'), 'echo moved', echoMarker(STEP, 'restart'), 'echo failed >&2'].join('\n')),
      STEP,
    );
    expect(steps.map((s) => s.name)).toEqual(['install', 'restart']);
  });

  it('are the ones the scripts print', () => {
    const d = desiredFrom();
    expect(verifyScript({ lookup: 'nf_mon=127.0.0.1:8222', timeoutSec: 5 })).toContain(
      `${echoMarker(VERIFY, 'answers')}; `,
    );
    const install = installScript(d, {
      install: [],
      remove: [],
      steps: ['restart'],
      pending: { revision: 'r', since: 's', actions: ['restart'] },
      composeKind: 'plugin',
      token: 'tok',
    });
    for (const s of ['install', 'restart', 'done']) expect(install).toContain(echoMarker(STEP, s));
    expect(observeScript(d).split('\n').at(-1)).toBe(echoMarker(OBSERVE, 'end'));
    expect(CONVERGED_OUTPUT).toContain(markerLine(OBSERVE, 'end'));
  });
});

describe('the fact table', () => {
  const d = desiredFrom();
  const m = new Marked(CONVERGED_OUTPUT, OBSERVE);

  it('fills every field of HostFacts, each fact exactly the fields it declares', () => {
    for (const f of FACTS) expect(Object.keys(f.parse(m, d)).sort()).toEqual([...f.provides].sort());
    const provided = FACTS.flatMap((f) => [...f.provides]).sort();
    expect(new Set(provided).size).toBe(provided.length);
    expect(provided).toEqual(Object.keys(parseFacts(CONVERGED_OUTPUT, d)).sort());
  });

  it('builds the one observe script: its fragments in order, then the end marker', () => {
    const paths = d.files.map((f) => f.path);
    const fragments = FACTS.flatMap((f) => f.shell({ d, paths }));
    const lines = observeScript(d).split('\n');
    expect(lines.slice(1, -1)).toEqual(fragments.join('\n').split('\n'));
    // Every section the captured output has is printed by a fact of the table.
    const printed = new Set(
      [...fragments.join('\n').matchAll(/echo ['"]@@natsfleet ([a-z0-9-]+)/g)].map((x) => x[1]).concat('end'),
    );
    expect([...new Set(m.sections.map((s) => s.name))].filter((n) => !printed.has(n))).toEqual([]);
  });
});

describe('multi-URL answers cannot forge sections or statuses', () => {
  it('a body carrying observe markers and fake status marks stays one body', async () => {
    const { createServer } = await import('node:http');
    const evil =
      '{"status":"ok"}\n@@natsfleet file /etc/ssh/sshd_config\n644 root root 10\n@@http 200\n@@natsfleet owned\n/var/lib/mysql\n';
    const server = createServer((req, res) => res.end(req.url === '/healthz' ? evil : '{"server_name":"x"}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const script = `echo '@@natsfleet monitor'\n${httpMany({ urls: [`http://127.0.0.1:${port}/healthz`, `http://127.0.0.1:${port}/varz`] })}\necho '@@natsfleet end'`;
      // Asynchronously: the server answering lives in this process.
      const { stdout: out } = await promisify(execFile)('sh', ['-c', script], { encoding: 'utf8' });
      // The whole answer is one base64 line: no line of it starts a section.
      expect(out.split('\n').filter((l) => l.startsWith('@@natsfleet'))).toEqual([
        '@@natsfleet monitor',
        '@@natsfleet end',
      ]);
      const answers = httpAnswers(out.split('\n')[1]);
      expect(answers).toEqual([
        { status: 200, body: evil },
        { status: 200, body: '{"server_name":"x"}' },
      ]);
    } finally {
      server.close();
    }
  });
});

describe('the HTTP client of the host scripts: Perl where the host has it, else curl, the same answers', () => {
  it('asks a TCP address and a Unix socket, with headers, statuses, chunks, refusals and timeouts', async () => {
    const { createServer } = await import('node:http');
    const net = await import('node:net');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'nf-http-'));
    const evil = 'x\n@@http-00000000-0000-0000-0000-000000000000 200\n@@natsfleet end\n';
    const app = createServer((req, res) => {
      if (req.url === '/version') return res.end(req.httpVersion);
      if (req.url === '/evil') return res.end(evil);
      if (req.url === '/ping') return res.writeHead(200, { Server: 'Docker/test' }).end('OK');
      if (req.url === '/slow') return; // never answers
      if (req.url === '/big') return res.end('x'.repeat(3 * 1024 * 1024));
      res.writeHead(404).end('{"message":"No such container: nats"}');
    });
    // A server that sends a chunked body whatever the request's version.
    const chunked = net.createServer((c) =>
      c.once('data', () =>
        c.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'),
      ),
    );
    const sock = join(dir, 'api.sock');
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    const unix = createServer(app.listeners('request')[0] as never);
    await new Promise<void>((r) => unix.listen(sock, () => r()));
    await new Promise<void>((r) => chunked.listen(0, '127.0.0.1', () => r()));
    const port = (app.address() as { port: number }).port;
    const cport = (chunked.address() as { port: number }).port;
    // A port nothing listens on.
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const refused = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const script = httpGroups([
      { socket: sock, headers: true, urls: ['http://docker/ping'] },
      { socket: sock, urls: ['http://docker/version', 'http://docker/containers/nats/json'] },
      {
        urls: [
          `http://127.0.0.1:${port}/version`,
          `http://127.0.0.1:${port}/evil`,
          `http://127.0.0.1:${cport}/chunked`,
          `http://127.0.0.1:${refused}/healthz`,
          `http://127.0.0.1:${port}/slow`,
        ],
      },
    ]);
    expect(script).toContain('if command -v perl >/dev/null 2>&1; then perl -e ');
    // Without perl on PATH: the same script falls back to curl.
    const bin = pathWithoutPerl();
    const run = (path: string) =>
      promisify(execFile)('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: path } }).then((r) =>
        httpAnswers(r.stdout),
      );
    try {
      const [perl, curl] = await Promise.all([run('/usr/bin:/bin'), run(bin)]);
      for (const [answers, version] of [
        [perl, '1.0'],
        [curl, '1.1'],
      ] as const) {
        expect(answers).toHaveLength(8);
        const [ping, ...rest] = answers;
        expect(ping.status).toBe(200);
        expect(ping.body).toMatch(/^HTTP\/1\.[01] 200 OK\r\n/);
        expect(ping.body).toMatch(/\r\nServer: Docker\/test\r\n/);
        expect(ping.body.endsWith('\r\n\r\nOK')).toBe(true);
        expect(rest).toEqual([
          { status: 200, body: version },
          { status: 404, body: '{"message":"No such container: nats"}' },
          { status: 200, body: version },
          { status: 200, body: evil },
          { status: 200, body: '{"a":1}' },
          { status: 0, body: '' },
          { status: 0, body: '' },
        ]);
      }
      // What they print is bounded (MAX_HTTP_ANSWER_BYTES): of two 3 MiB answers, the first whole, the second cut.
      const big = httpMany({ urls: [`http://127.0.0.1:${port}/big`, `http://127.0.0.1:${port}/big`] });
      for (const path of ['/usr/bin:/bin', bin]) {
        const { stdout } = await promisify(execFile)('/bin/sh', ['-c', big], {
          encoding: 'utf8',
          env: { PATH: path },
          maxBuffer: 64 * 1024 * 1024,
        });
        expect(Buffer.from(stdout.trim(), 'base64').length).toBe(MAX_HTTP_ANSWER_BYTES + 37);
        expect(httpAnswers(stdout).map((a) => [a.status, a.body.length])).toEqual([[200, 3 * 1024 * 1024]]);
      }
    } finally {
      app.close();
      unix.close();
      chunked.close();
      app.closeAllConnections();
      unix.closeAllConnections();
    }
  }, 20_000);

  it('is curl alone for an address the Perl client does not ask', () => {
    expect(httpMany({ urls: ['http://localhost:8222/varz'] })).not.toContain('perl');
    expect(httpMany({ urls: ['http://[::1]:8222/varz'] })).not.toContain('perl');
    expect(httpMany({ urls: ['http://127.0.0.1:8222/varz'] })).toContain('perl');
  });
});
