// Owns building and caching the sandbox images, all from Debian packages (Docker Hub is not reachable):
//   - the host image: a debootstrapped Debian with systemd, OpenSSH, Docker, Compose v1 and sudo, and two
//     non-root login users: `deploy` (passwordless sudo, what an operator's Ansible user has) and `guest`
//     (no sudo rights);
//   - nats:<version>: scratch images holding a Debian nats-server binary and its libc, like the official image:
//     bookworm's (this machine's, as nats:2.9.10 and its variant nats:2.9.10-r1), trixie's and sid's (their
//     packages downloaded once into DEB_CACHE, tagged with the version the binary prints);
//   - jonasal/nginx-certbot:latest: a stand-in debootstrapped from Debian's nginx, certbot and openssl that
//     follows the real image's contract (see assets/nginx-certbot/entrypoint.sh), its ACME server the
//     fleet's pebble;
//   - the pebble image: a scratch image holding Debian bookworm's pebble (a real ACME server, the test CA
//     of Let's Encrypt's Boulder) with a config and an HTTPS certificate of its own; each fleet runs one on
//     the outer Docker engine (not preloaded into hosts).
// Each image is tagged by a hash of its inputs, so a rebuild happens only when an input changed.
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
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
  'sudo',
];
/** The host image's non-root login users (their authorized keys are seeded per host, see fleet.ts). */
export const SANDBOX_USERS = {
  /** Passwordless sudo (NOPASSWD: ALL), as spec.ssh.user with become. */
  sudo: 'deploy',
  /** No sudo rights at all: become is refused. */
  plain: 'guest',
} as const;
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

export const hostImageTag = () => {
  const inputs = hashOf(SUITE, HOST_PACKAGES.join(','), JSON.stringify(SANDBOX_USERS), ...assetBytes('host'));
  return `natsfleet-sandbox-host:${inputs}`;
};

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
    addUsers(root);
    writeFileSync(join(root, 'etc/machine-id'), '');
    rmSync(join(root, 'var/cache/apt/archives'), { recursive: true, force: true });
    await importRootfs(root, tag, ['CMD ["/lib/systemd/systemd"]', 'ENV container=docker', `LABEL ${LABEL}=${tag}`]);
    return tag;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Adds the non-root login users to a rootfs (written directly: faster than useradd in a chroot). Their
 * authorized keys live in /etc/ssh/authorized_keys/<user> (see assets/host/sshd-natsfleet.conf).
 */
function addUsers(root: string) {
  const users = [
    { name: SANDBOX_USERS.sudo, id: 1000 },
    { name: SANDBOX_USERS.plain, id: 1001 },
  ];
  const append = (file: string, lines: string[]) =>
    writeFileSync(join(root, file), `${lines.join('\n')}\n`, { flag: 'a' });
  append(
    'etc/passwd',
    users.map((u) => `${u.name}:x:${u.id}:${u.id}::/home/${u.name}:/bin/bash`),
  );
  append(
    'etc/group',
    users.map((u) => `${u.name}:x:${u.id}:`),
  );
  // '*': no password can log in (keys only), and the account is not locked (sshd refuses locked ones).
  append(
    'etc/shadow',
    users.map((u) => `${u.name}:*:19000:0:99999:7:::`),
  );
  append(
    'etc/gshadow',
    users.map((u) => `${u.name}:!::`),
  );
  for (const u of users) {
    mkdirSync(join(root, 'home', u.name), { recursive: true, mode: 0o755 });
    chownSync(join(root, 'home', u.name), u.id, u.id);
  }
  mkdirSync(join(root, 'etc/ssh/authorized_keys'), { recursive: true, mode: 0o755 });
  writeFileSync(join(root, 'etc/sudoers.d/natsfleet-sandbox'), `${SANDBOX_USERS.sudo} ALL=(ALL:ALL) NOPASSWD: ALL\n`, {
    mode: 0o440,
  });
}

/** Imports directory `root` as image `tag`, with Dockerfile instructions `changes` (CMD, ENV, LABEL...). */
async function importRootfs(root: string, tag: string, changes: string[]): Promise<void> {
  const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await docker(['import', ...changes.flatMap((c) => ['-c', c]), '-', tag], { input: tar.stdout });
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
/** Downloaded Debian packages (nats-server, pebble), a directory per Debian suite, kept across runs. */
export const DEB_CACHE = '/var/cache/natsfleet/debs';

/**
 * Debian `suite`'s package `pkg` (a nats-server, pebble): the cached one, else downloaded with apt from
 * the Debian mirror (signatures checked against the Debian archive keyring), without touching this
 * machine's apt configuration or state. The cache does not follow the mirror: remove DEB_CACHE/<suite>
 * for that.
 */
async function debianDeb(pkg: string, suite: string, log: (s: string) => void): Promise<string> {
  if (!/^[a-z0-9][a-z0-9.+-]*$/.test(pkg)) throw new Error(`sandbox images: ${pkg} is not a Debian package name`);
  const isDeb = new RegExp(`^${pkg.replace(/[.+]/g, '\\$&')}_.+\\.deb$`);
  const dir = join(DEB_CACHE, suite);
  mkdirSync(dir, { recursive: true });
  const cached = readdirSync(dir)
    .filter((f) => isDeb.test(f))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (cached.length) return cached[0];
  log(`downloading ${pkg} from Debian ${suite}`);
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
    await run('apt-get', [...apt, 'download', `${pkg}/${suite}`], { cwd: join(work, 'deb'), timeoutMs: 120_000 });
    const deb = readdirSync(join(work, 'deb')).find((f) => isDeb.test(f));
    if (!deb) throw new Error(`apt-get download left no ${pkg} package`);
    renameSync(join(work, 'deb', deb), join(dir, deb));
    return join(dir, deb);
  } catch (e) {
    throw new Error(
      `sandbox images: cannot download ${pkg} from Debian ${suite} (${DEBIAN_MIRROR}): ` +
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
        const deb = await debianDeb('nats-server', suite, log);
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

/** The fleet's ACME server: its network alias on the fleet's network, its ports and directory URL. */
export const PEBBLE_ALIAS = 'pebble';
export const PEBBLE_ACME_PORT = 14000;
export const PEBBLE_MANAGEMENT_PORT = 15000;
/** The ACME directory the proxy stand-in's certbot uses (baked into the image, production and staging). */
export const ACME_DIRECTORY = `https://${PEBBLE_ALIAS}:${PEBBLE_ACME_PORT}/dir`;
/**
 * pebble's own HTTPS certificate (for its API: the ACME directory and the management interface), valid
 * for `pebble` and `localhost`, and the CA that signed it (whose PEM the proxy image trusts). Made once
 * with openssl and kept here, so that the pebble and proxy images built from them stay cached; remove
 * the directory to make new ones (both images are rebuilt then). The CA's key is not kept.
 */
export const PEBBLE_API_TLS = '/var/cache/natsfleet/pebble-api';

interface ApiTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}
let apiTls: Promise<ApiTls> | undefined;

function pebbleApiTls(): Promise<ApiTls> {
  apiTls ??= (async () => {
    const read = () => ({
      ca: readFileSync(join(PEBBLE_API_TLS, 'ca.pem')),
      cert: readFileSync(join(PEBBLE_API_TLS, 'cert.pem')),
      key: readFileSync(join(PEBBLE_API_TLS, 'key.pem')),
    });
    try {
      return read();
    } catch {
      // made below
    }
    mkdirSync(dirname(PEBBLE_API_TLS), { recursive: true });
    const work = mkdtempSync(`${PEBBLE_API_TLS}.new-`);
    try {
      const f = (n: string) => join(work, n);
      const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
      await run('openssl', [
        ...['req', '-x509', ...ec, '-days', '3650', '-subj', '/CN=natsfleet sandbox pebble API CA'],
        ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
        ...['-keyout', f('ca.key'), '-out', f('ca.pem')],
      ]);
      await run('openssl', [
        'req',
        '-new',
        ...ec,
        '-subj',
        '/CN=pebble',
        '-keyout',
        f('key.pem'),
        '-out',
        f('req.csr'),
      ]);
      writeFileSync(
        f('ext.cnf'),
        'subjectAltName=DNS:pebble,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n' +
          'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
      );
      await run('openssl', [
        ...['x509', '-req', '-in', f('req.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-days', '3650'],
        ...['-extfile', f('ext.cnf'), '-out', f('cert.pem')],
      ]);
      for (const n of ['ca.key', 'req.csr', 'ext.cnf']) rmSync(f(n));
      chmodSync(work, 0o755);
      try {
        renameSync(work, PEBBLE_API_TLS);
      } catch {
        // Another run made them first: theirs are kept (ours go in finally).
      }
      return read();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  })();
  apiTls.catch(() => (apiTls = undefined));
  return apiTls;
}

/**
 * The pebble image, tagged natsfleet-sandbox-pebble:<input hash>: Debian bookworm's pebble (its libc
 * too), the config of assets/pebble and its HTTPS certificate. pebble keeps everything in memory: a new
 * container is a new CA (roots at https://pebble:15000/roots/0).
 */
export async function buildPebbleImage(log: (s: string) => void = () => {}): Promise<string> {
  const [deb, tls] = await Promise.all([debianDeb('pebble', SUITE, log), pebbleApiTls()]);
  const unpacked = mkdtempSync(join(tmpdir(), 'natsfleet-pebble-'));
  try {
    await run('dpkg-deb', ['-x', deb, unpacked]);
    const binary = join(unpacked, 'usr/bin/pebble');
    const inputHash = hashOf(readFileSync(binary), ...assetBytes('pebble'), tls.cert, tls.key);
    const tag = `natsfleet-sandbox-pebble:${inputHash}`;
    await buildFromContext(tag, inputHash, (ctx) => {
      const root = join(ctx, 'rootfs');
      copyWithLibs(root, binary, '/usr/bin/pebble');
      mkdirSync(join(root, 'etc/pebble'), { recursive: true });
      copyFileSync(join(ASSETS, 'pebble/pebble-config.json'), join(root, 'etc/pebble/pebble-config.json'));
      writeFileSync(join(root, 'etc/pebble/cert.pem'), tls.cert);
      writeFileSync(join(root, 'etc/pebble/key.pem'), tls.key);
      mkdirSync(join(root, 'tmp'));
      return [
        'FROM scratch',
        'COPY rootfs/ /',
        `EXPOSE ${PEBBLE_ACME_PORT} ${PEBBLE_MANAGEMENT_PORT}`,
        'ENTRYPOINT ["/usr/bin/pebble", "-config", "/etc/pebble/pebble-config.json"]',
      ].join('\n');
    });
    return tag;
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
  }
}

/**
 * What the proxy stand-in is debootstrapped with (minbase brings bash, coreutils, sed, grep, findutils).
 * python3-cffi-backend is certbot's (python3-cryptography's) through a virtual package, which debootstrap
 * does not resolve.
 */
export const PROXY_PACKAGES = ['nginx', 'certbot', 'python3-cffi-backend', 'openssl', 'ca-certificates'];
/** Where the proxy image keeps the CA of pebble's HTTPS API (certbot's REQUESTS_CA_BUNDLE). */
const PROXY_API_CA = '/etc/natsfleet/pebble-api-ca.pem';

/**
 * The jonasal/nginx-certbot:latest stand-in: a debootstrapped Debian with nginx and certbot whose
 * entrypoint follows the real image (assets/nginx-certbot/entrypoint.sh), certbot pointed at the
 * fleet's pebble and trusting its API.
 */
export async function buildProxyImage(log: (s: string) => void = () => {}): Promise<void> {
  const tls = await pebbleApiTls();
  const inputHash = hashOf(SUITE, PROXY_PACKAGES.join(','), ACME_DIRECTORY, ...assetBytes('nginx-certbot'), tls.ca);
  if ((await labelOf(PROXY_IMAGE)) === inputHash) return;
  const root = mkdtempSync(join('/var/tmp', 'natsfleet-rootfs-'));
  try {
    log(`building ${PROXY_IMAGE} (sandbox stand-in): debootstrap ${SUITE} (about a minute)`);
    await run('debootstrap', ['--variant=minbase', `--include=${PROXY_PACKAGES.join(',')}`, SUITE, root], {
      timeoutMs: 900_000,
    });
    const put = (dest: string, content: string | Buffer, mode = 0o644) => {
      mkdirSync(join(root, dirname(dest)), { recursive: true });
      writeFileSync(join(root, dest), content);
      chmodSync(join(root, dest), mode);
    };
    const asset = (f: string) => readFileSync(join(ASSETS, 'nginx-certbot', f));
    put('/etc/nginx/nginx.conf', asset('nginx.conf'));
    put('/etc/nginx/conf.d/redirector.conf', asset('redirector.conf'));
    put('/entrypoint.sh', asset('entrypoint.sh'), 0o755);
    put('/root/.config/letsencrypt/cli.ini', asset('cli.ini'));
    put(PROXY_API_CA, tls.ca);
    for (const d of ['etc/nginx/user_conf.d', 'etc/letsencrypt', 'var/www/letsencrypt']) {
      mkdirSync(join(root, d), { recursive: true });
    }
    // Debian's default site and what an image does not need.
    for (const d of [
      'etc/nginx/sites-enabled',
      'var/cache/apt',
      'var/lib/apt/lists',
      'usr/share/doc',
      'usr/share/man',
      'usr/share/info',
      'usr/share/locale',
    ]) {
      rmSync(join(root, d), { recursive: true, force: true });
    }
    await importRootfs(root, PROXY_IMAGE, [
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      // As the real image reads them (run_certbot.sh): both are the fleet's pebble here, the sandbox's test CA.
      `ENV CERTBOT_PRODUCTION_URL=${ACME_DIRECTORY}`,
      `ENV CERTBOT_STAGING_URL=${ACME_DIRECTORY}`,
      `ENV REQUESTS_CA_BUNDLE=${PROXY_API_CA}`,
      'VOLUME /etc/letsencrypt',
      'EXPOSE 80 443',
      'ENTRYPOINT ["/bin/bash", "/entrypoint.sh"]',
      `LABEL ${LABEL}=${inputHash}`,
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
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
  /** The pebble image's tag (run by each fleet on the outer Docker engine). */
  pebble: string;
}

export async function buildAllImages(log: (s: string) => void): Promise<SandboxImages> {
  const [host, nats, pebble] = await Promise.all([
    buildHostImage(log),
    buildNatsImages(log),
    buildPebbleImage(log),
    buildProxyImage(log),
  ]);
  return { host, nats, pebble };
}
