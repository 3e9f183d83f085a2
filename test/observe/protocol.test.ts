// The marker protocol of the remote scripts: what the builders echo is what the one parser reads back
// (through a real shell), for observe's sections, verify's and apply's steps; and the fact table, each
// fact a shell fragment with its parser, covers every field of HostFacts.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  curlMany,
  echoMarker,
  echoMarkerOf,
  httpAnswers,
  Marked,
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
      const script = `echo '@@natsfleet monitor'\n${curlMany([], [`http://127.0.0.1:${port}/healthz`, `http://127.0.0.1:${port}/varz`])}\necho '@@natsfleet end'`;
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
