// Owns building and caching the sandbox images, all from Debian packages (Docker Hub is not reachable):
//   - the host image: a debootstrapped Debian with systemd, OpenSSH, Docker and Compose v1;
//   - nats:<version>: scratch images holding a Debian nats-server binary and its libc, like the official image:
//     bookworm's (this machine's, as nats:2.9.10 and its variant nats:2.9.10-r1), trixie's and sid's (their
//     packages downloaded once into DEB_CACHE, tagged with the version the binary prints);
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
  renameSync,
  rmSync,
  statSync,
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

/** The NATS images every sandbox host has: three real nats-server versions, all Debian's. */
export interface NatsImages {
  /** nats:2.9.10: Debian bookworm's nats-server (this machine's /usr/sbin/nats-server). */
  old: string;
  /** nats:2.9.10-r1: the same server as a distinct image (another id), to test image upgrades. */
  oldVariant: string;
  /** Debian trixie's nats-server, tagged with the version it prints (nats:2.10.27 when this was written). */
  next: string;
  /** Debian sid's nats-server, tagged likewise (nats:2.15.1 when this was written). */
  newest: string;
}

/** NatsImages.old and .oldVariant: bookworm's nats-server. */
export const NATS_TAGS = ['nats:2.9.10', 'nats:2.9.10-r1'] as const;
/** The Debian suites that give NatsImages.next and .newest. */
export const NATS_SUITES = { next: 'trixie', newest: 'sid' } as const;
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
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
/** Downloaded nats-server packages, a directory per Debian suite, kept across runs. */
export const DEB_CACHE = '/var/cache/natsfleet/debs';

/**
 * Debian `suite`'s nats-server package: the cached one, else downloaded with apt from the Debian mirror
 * (signatures checked against the Debian archive keyring), without touching this machine's apt
 * configuration or state. The cache does not follow the mirror: remove DEB_CACHE/<suite> for that.
 */
async function suiteDeb(suite: string, log: (s: string) => void): Promise<string> {
  const dir = join(DEB_CACHE, suite);
  mkdirSync(dir, { recursive: true });
  const cached = readdirSync(dir)
    .filter((f) => /^nats-server_.+\.deb$/.test(f))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (cached.length) return cached[0];
  log(`downloading nats-server from Debian ${suite}`);
  // Lists and package go to a private directory first: a concurrent run never sees half a file. Those
  // of runs killed an hour ago or more go.
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (f.startsWith('.download-') && Date.now() - statSync(p).mtimeMs > 3_600_000) rmSync(p, { recursive: true });
  }
  const work = mkdtempSync(join(dir, '.download-'));
  try {
    for (const d of ['lists/partial', 'cache/archives/partial', 'deb']) mkdirSync(join(work, d), { recursive: true });
    writeFileSync(join(work, 'sources.list'), `deb [signed-by=${DEBIAN_KEYRING}] ${DEBIAN_MIRROR} ${suite} main\n`);
    const apt = [
      '-qq',
      ...[
        `Dir::Etc::SourceList=${join(work, 'sources.list')}`,
        'Dir::Etc::SourceParts=/dev/null',
        'Dir::Etc::Preferences=/dev/null',
        'Dir::Etc::PreferencesParts=/dev/null',
        'Dir::State::status=/dev/null', // this machine's installed packages are no candidates
        `Dir::State::Lists=${join(work, 'lists')}`,
        `Dir::Cache=${join(work, 'cache')}`,
        'APT::Sandbox::User=root',
        'APT::Update::Error-Mode=any', // an index that fails to download is an error, not a warning
        'Acquire::Languages=none',
        'Acquire::Retries=1',
        'Acquire::http::Timeout=15', // seconds without progress
      ].flatMap((o) => ['-o', o]),
    ];
    await run('apt-get', [...apt, 'update'], { timeoutMs: 120_000 });
    await run('apt-get', [...apt, 'download', `nats-server/${suite}`], { cwd: join(work, 'deb'), timeoutMs: 120_000 });
    const deb = readdirSync(join(work, 'deb')).find((f) => /^nats-server_.+\.deb$/.test(f));
    if (!deb) throw new Error('apt-get download left no nats-server package');
    renameSync(join(work, 'deb', deb), join(dir, deb));
    return join(dir, deb);
  } catch (e) {
    throw new Error(
      `sandbox images: cannot download nats-server from Debian ${suite} (${DEBIAN_MIRROR}): ` +
        (e instanceof Error ? e.message : String(e)),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The image tag of a nats-server binary: its version (`nats-server: v2.10.27` gives nats:2.10.27). */
async function versionTag(binary: string): Promise<string> {
  const printed = (await run(binary, ['--version'], { timeoutMs: 30_000 })).trim();
  const m = /^nats-server: v(\d+\.\d+\.\d+[\w.-]{0,100})$/.exec(printed);
  if (!m) throw new Error(`sandbox images: ${binary} --version printed ${JSON.stringify(printed)}, not a version`);
  return `nats:${m[1]}`;
}

/** `tag`: a scratch image of nats-server `binary` and the libc it loads, like the official image. */
function buildNatsImage(tag: string, binary: string, inputHash: string, variant = false): Promise<void> {
  return buildFromContext(tag, inputHash, (ctx) => {
    copyWithLibs(join(ctx, 'rootfs'), binary, '/nats-server');
    copyFileSync(join(ASSETS, 'nats/nats-server.conf'), join(ctx, 'rootfs/nats-server.conf'));
    mkdirSync(join(ctx, 'rootfs/tmp'));
    // A variant is a distinct image (another id) of the same binary, so that image upgrades can be tested.
    if (variant) writeFileSync(join(ctx, 'rootfs/SANDBOX_VARIANT'), `${tag}\n`);
    return [
      'FROM scratch',
      'COPY rootfs/ /',
      'EXPOSE 4222 6222 8222',
      'ENTRYPOINT ["/nats-server"]',
      'CMD ["-c", "/nats-server.conf"]',
    ].join('\n');
  });
}

/**
 * The NATS images, three real server versions: bookworm's nats-server (this machine's, as NATS_TAGS),
 * then trixie's and sid's, each tagged with the version it prints.
 */
export async function buildNatsImages(log: (s: string) => void = () => {}): Promise<NatsImages> {
  const assets = assetBytes('nats');
  const unpacked = mkdtempSync(join(tmpdir(), 'natsfleet-debs-'));
  try {
    const [next, newest] = await Promise.all(
      [NATS_SUITES.next, NATS_SUITES.newest].map(async (suite) => {
        const deb = await suiteDeb(suite, log);
        await run('dpkg-deb', ['-x', deb, join(unpacked, suite)]);
        const binary = join(unpacked, suite, 'usr/sbin/nats-server');
        return { binary, tag: await versionTag(binary), inputHash: hashOf(readFileSync(binary), ...assets) };
      }),
    );
    const [old, oldVariant] = NATS_TAGS;
    if (new Set([old, next.tag, newest.tag]).size < 3)
      throw new Error(
        `sandbox images: Debian bookworm, ${NATS_SUITES.next} and ${NATS_SUITES.newest} must ship three ` +
          `nats-server versions; they give ${old}, ${next.tag} and ${newest.tag}`,
      );
    const oldHash = hashOf(readFileSync(NATS_BIN), ...assets);
    await Promise.all([
      buildNatsImage(old, NATS_BIN, `${oldHash}-0`),
      buildNatsImage(oldVariant, NATS_BIN, `${oldHash}-1`, true),
      buildNatsImage(next.tag, next.binary, next.inputHash),
      buildNatsImage(newest.tag, newest.binary, newest.inputHash),
    ]);
    return { old, oldVariant, next: next.tag, newest: newest.tag };
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
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

/** The preloaded images whose tags are fixed; preloadedImages() gives them all. */
export const PRELOADED_IMAGES = [...NATS_TAGS, PROXY_IMAGE];

/** Every image a sandbox host gets preloaded. */
export const preloadedImages = (nats: NatsImages): string[] => [
  nats.old,
  nats.oldVariant,
  nats.next,
  nats.newest,
  PROXY_IMAGE,
];

export interface SandboxImages {
  /** The host image's tag. */
  host: string;
  nats: NatsImages;
}

export async function buildAllImages(log: (s: string) => void): Promise<SandboxImages> {
  const [host, nats] = await Promise.all([buildHostImage(log), buildNatsImages(log), buildProxyImage()]);
  return { host, nats };
}
