// Benchmark support: one process answering as N converged hosts over real SSH (ssh2's server), each
// on its own 127.0.0.1 port, with a fixed delay per remote command standing in for the time the
// observe script takes on a real host. Light enough for 10,000 hosts: one plain TCP listener per port
// handing its connections to ONE ssh2 server (one parsed host key, shared by every simulated host and
// pinned in every manifest), and every host's answer rendered once, before the ports are announced, so
// the sweep's time is the controller's and the SSH protocol's, not the simulator's rendering.
// Needs about two file descriptors per host (its listener and the controller's connection): run it with
// `ulimit -n` above 2 * N + 100. Prints {"ports": [...], "hostKey": "..."} when listening.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import { loadManifests } from '../controller/manifest/load.js';
import { renderHost } from '../controller/render/desired.js';
import { secretResolver } from '../controller/secrets/resolve.js';
import { convergedOutput, simManifest, simName } from './fake-host.js';

// Hosts number `first` to `first + count - 1` (several processes share a big fleet: each needs 2 fds a host).
const [count, delayMs, first] = [
  Number(process.argv[2] ?? 1000),
  Number(process.argv[3] ?? 30),
  Number(process.argv[4] ?? 0),
];
const key = ssh2.utils.generateKeyPairSync('ed25519');
const pub = key.public.split(' ');
const hostKey = `${pub[0]} ${pub[1]}`;
const fixture = readFileSync(new URL('../test/fixtures/observe/converged.txt', import.meta.url), 'utf8');
const noSecrets = secretResolver({ env: {}, readFile: () => '' });
const ignore = () => {};

/** Each host's observe answer, by its index; a connection's host, by its socket. */
const answers: Buffer[] = [];
const hostOfSocket = new WeakMap<Socket, number>();

const ssh = new ssh2.Server({ hostKeys: [key.private] }, (client) => {
  // By the socket, not the client's port: Linux gives one local port to several connections to different
  // ports at once. ssh2 does not pass the socket to this listener: its (stable) private field is read.
  const answer = answers[hostOfSocket.get((client as unknown as { _sock: Socket })._sock) ?? -1];
  client.on('error', ignore);
  // Any key: the controller's signature is what it costs the controller; the simulator need not check it.
  client.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey'])));
  client.on('ready', () => {
    client.on('session', (accept) => {
      const session = accept();
      session.on('exec', (acceptExec) => {
        const stream = acceptExec();
        stream.on('error', ignore);
        stream.on('data', ignore);
        stream.on('end', () => {
          setTimeout(() => {
            if (answer) stream.write(answer);
            stream.exit(answer ? 0 : 1);
            stream.end();
          }, delayMs);
        });
      });
    });
  });
});

const listeners: Server[] = [];
for (let i = 0; i < count; i++) {
  const server = createServer({ noDelay: true }, (sock: Socket) => {
    sock.on('error', ignore);
    hostOfSocket.set(sock, i);
    ssh.injectSocket(sock);
  });
  server.on('error', (e) => {
    process.stderr.write(`fake fleet: cannot listen (${e.message}); raise ulimit -n above ${2 * count + 100}\n`);
    process.exit(1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  listeners.push(server);
}
const ports = listeners.map((s) => (s.address() as { port: number }).port);

// Every host's converged answer, rendered from its manifest (loaded and validated together, once).
const { hosts, problems } = loadManifests(
  ports.map((port, i) => ({ path: `hosts/${simName(first + i)}.yaml`, text: simManifest(first + i, port, hostKey) })),
);
if (problems.some((p) => p.severity === 'error')) throw new Error(JSON.stringify(problems.slice(0, 3)));
for (const h of hosts)
  answers[Number(h.name.slice('sim-'.length)) - first] = Buffer.from(
    convergedOutput(fixture, renderHost(h, noSecrets)),
  );

process.stdout.write(`${JSON.stringify({ ports, hostKey })}\n`);
