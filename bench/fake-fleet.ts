// Benchmark support: one process answering as N converged hosts over real SSH (ssh2's server), each
// on its own 127.0.0.1 port, with a fixed delay per remote command standing in for the time the
// observe script takes on a real host. Prints {"ports": [...], "hostKey": "..."} when listening.
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { loadManifests } from '../controller/manifest/load.js';
import { renderHost } from '../controller/render/desired.js';
import { secretResolver } from '../controller/secrets/resolve.js';
import { convergedOutput, simManifest } from './fake-host.js';

const [count, delayMs] = [Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 30)];
const key = ssh2.utils.generateKeyPairSync('ed25519');
const fixture = readFileSync(new URL('../test/fixtures/observe/converged.txt', import.meta.url), 'utf8');
const noSecrets = secretResolver({ env: {}, readFile: () => '' });

const ports: number[] = [];
for (let i = 0; i < count; i++) {
  const server = new ssh2.Server({ hostKeys: [key.private] }, (client) => {
    let output = '';
    client.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey'])));
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec) => {
          const stream = acceptExec();
          stream.on('data', () => {});
          stream.on('end', () => {
            setTimeout(() => {
              stream.write(output);
              stream.exit(0);
              stream.end();
            }, delayMs);
          });
        });
      });
    });
    client.on('error', () => {});
    // Render lazily, once per connection: the host's converged observe output.
    const port = (server.address() as { port: number }).port;
    const pub = key.public.split(' ');
    const { hosts } = loadManifests([
      { path: `hosts/sim-${String(i).padStart(4, '0')}.yaml`, text: simManifest(i, port, `${pub[0]} ${pub[1]}`) },
    ]);
    output = convergedOutput(fixture, renderHost(hosts[0], noSecrets));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ports.push((server.address() as { port: number }).port);
}
const pub = key.public.split(' ');
process.stdout.write(`${JSON.stringify({ ports, hostKey: `${pub[0]} ${pub[1]}` })}\n`);
