// Owns building and caching the sandbox images, all from Debian packages (Docker Hub is not reachable):
//   - the host image: a debootstrapped Debian with systemd, OpenSSH, Docker and Compose v1;
//   - nats:<tag>: scratch images holding Debian's nats-server binary and its libc, like the official image;
//   - jonasal/nginx-certbot:latest: a stand-in built from Debian's nginx, openssl and busybox that follows
//     the real image's contract (see assets/nginx-certbot/entrypoint.sh).
// Each image is tagged by a hash of its inputs, so a rebuild happens only when an input changed.
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packagePath } from '../package-root.js';
import { docker, dockerOk, run } from './docker.js';

const ASSETS = packagePath('controller', 'sandbox', 'assets');
export const HOST_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'docker.io',
  'docker-compose',
  'curl',
  'ca-certificates',
  'iproute2',
  'procps',
  'python3',
  'coreutils',
];
const SUITE = 'bookworm';
export const NATS_TAGS = ['nats:2.9.10', 'nats:2.9.10-r1'] as const;
export const PROXY_IMAGE = 'jonasal/nginx-certbot:latest';
const LABEL = 'io.natsfleet.sandbox.input';

function hashOf(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 12);
}

const assetBytes = (dir: string) =>
  readdirSync(join(ASSETS, dir))
    .sort()
    .flatMap((f) => [f, readFileSync(join(ASSETS, dir, f))]);

async function labelOf(image: string): Promise<string | undefined> {
  const out = await docker(['image', 'inspect', '--format', `{{ index .Config.Labels "${LABEL}" }}`, image]).catch(
    () => '',
  );
  return out.trim() || undefined;
}

/** Copies a binary and every shared library it loads into `root`, at the same paths. */
function copyWithLibs(root: string, binary: string, as = binary) {
  const put = (src: string, dest: string) => {
    mkdirSync(join(root, dirname(dest)), { recursive: true });
    copyFileSync(realpathSync(src), join(root, dest));
    chmodSync(join(root, dest), 0o755);
  };
  put(binary, as);
  let ldd = '';
  try {
    ldd = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return; // a static binary: ldd says "not a dynamic executable"
  }
  for (const m of ldd.matchAll(/(\/\S+) \(0x/g)) put(m[1], m[1]);
}

export const hostImageTag = () =>
  `natsfleet-sandbox-host:${hashOf(SUITE, HOST_PACKAGES.join(','), ...assetBytes('host'))}`;

export async function buildHostImage(log: (s: string) => void): Promise<string> {
  const tag = hostImageTag();
  if (await dockerOk(['image', 'inspect', tag])) return tag;
  const root = mkdtempSync(join('/var/tmp', 'natsfleet-rootfs-'));
  try {
    log(`building ${tag}: debootstrap ${SUITE} (about a minute)`);
    await run('debootstrap', ['--variant=minbase', `--include=${HOST_PACKAGES.join(',')}`, SUITE, root], {
      timeoutMs: 900_000,
    });
    // Per-host keys are put in at create time; none are baked into the image.
    for (const f of readdirSync(join(root, 'etc/ssh'))) if (f.startsWith('ssh_host_')) rmSync(join(root, 'etc/ssh', f));
    copyFileSync(join(ASSETS, 'host/sshd-natsfleet.conf'), join(root, 'etc/ssh/sshd_config.d/natsfleet.conf'));
    mkdirSync(join(root, 'usr/local/lib/natsfleet'), { recursive: true });
    copyFileSync(join(ASSETS, 'host/compose-plugin-shim'), join(root, 'usr/local/lib/natsfleet/compose-plugin-shim'));
    chmodSync(join(root, 'usr/local/lib/natsfleet/compose-plugin-shim'), 0o755);
    mkdirSync(join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
    writeFileSync(join(root, 'etc/machine-id'), '');
    rmSync(join(root, 'var/cache/apt/archives'), { recursive: true, force: true });
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await docker(
      [
        'import',
        '-c',
        'CMD ["/lib/systemd/systemd"]',
        '-c',
        'ENV container=docker',
        '-c',
        `LABEL ${LABEL}=${tag}`,
        '-',
        tag,
      ],
      { input: tar.stdout },
    );
    return tag;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function buildFromContext(tag: string, inputHash: string, fill: (ctx: string) => string): Promise<void> {
  if ((await labelOf(tag)) === inputHash) return;
  const ctx = mkdtempSync(join(tmpdir(), 'natsfleet-ctx-'));
  try {
    const dockerfile = fill(ctx);
    writeFileSync(join(ctx, 'Dockerfile'), `${dockerfile}\nLABEL ${LABEL}=${inputHash}\n`);
    await docker(['build', '--quiet', '--tag', tag, ctx], { timeoutMs: 300_000 });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

const NATS_BIN = '/usr/sbin/nats-server';

export async function buildNatsImages(): Promise<void> {
  const binHash = hashOf(readFileSync(NATS_BIN), ...assetBytes('nats'));
  for (const [i, tag] of NATS_TAGS.entries()) {
    await buildFromContext(tag, `${binHash}-${i}`, (ctx) => {
      copyWithLibs(join(ctx, 'rootfs'), NATS_BIN, '/nats-server');
      copyFileSync(join(ASSETS, 'nats/nats-server.conf'), join(ctx, 'rootfs/nats-server.conf'));
      mkdirSync(join(ctx, 'rootfs/tmp'));
      // The second tag is a distinct image (another id), so that image upgrades can be tested.
      if (i > 0) writeFileSync(join(ctx, 'rootfs/SANDBOX_VARIANT'), `${tag}\n`);
      return [
        'FROM scratch',
        'COPY rootfs/ /',
        'EXPOSE 4222 6222 8222',
        'ENTRYPOINT ["/nats-server"]',
        'CMD ["-c", "/nats-server.conf"]',
      ].join('\n');
    });
  }
}

const PROXY_BINARIES = ['/usr/sbin/nginx', '/usr/bin/openssl', '/bin/busybox'];

export async function buildProxyImage(): Promise<void> {
  const inputHash = hashOf(...PROXY_BINARIES.map((b) => readFileSync(b)), ...assetBytes('nginx-certbot'));
  await buildFromContext(PROXY_IMAGE, inputHash, (ctx) => {
    const root = join(ctx, 'rootfs');
    for (const b of PROXY_BINARIES) copyWithLibs(root, b);
    const a = (f: string) => join(ASSETS, 'nginx-certbot', f);
    const put = (src: string, dest: string, mode = 0o644) => {
      mkdirSync(join(root, dirname(dest)), { recursive: true });
      copyFileSync(src, join(root, dest));
      chmodSync(join(root, dest), mode);
    };
    put(a('nginx.conf'), '/etc/nginx/nginx.conf');
    put('/etc/nginx/mime.types', '/etc/nginx/mime.types');
    put(a('redirector.conf'), '/etc/nginx/conf.d/redirector.conf');
    put(a('entrypoint.sh'), '/entrypoint.sh', 0o755);
    put(a('passwd'), '/etc/passwd');
    put(a('group'), '/etc/group');
    put('/usr/lib/ssl/openssl.cnf', '/usr/lib/ssl/openssl.cnf');
    for (const d of [
      '/etc/nginx/user_conf.d',
      '/etc/letsencrypt',
      '/var/lib/nginx',
      '/var/log/nginx',
      '/run',
      '/tmp',
      '/var/www',
    ]) {
      mkdirSync(join(root, d), { recursive: true });
    }
    return [
      'FROM scratch',
      'COPY rootfs/ /',
      'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
      'VOLUME /etc/letsencrypt',
      'EXPOSE 80 443',
      'STOPSIGNAL SIGTERM',
      'ENTRYPOINT ["/bin/sh", "/entrypoint.sh"]',
    ].join('\n');
  });
}

/** Every image a sandbox host gets preloaded. */
export const PRELOADED_IMAGES = [...NATS_TAGS, PROXY_IMAGE];

export async function buildAllImages(log: (s: string) => void): Promise<string> {
  const [host] = await Promise.all([buildHostImage(log), buildNatsImages(), buildProxyImage()]);
  return host;
}
