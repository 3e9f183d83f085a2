// Owns `natsfleet init [DIR]`: scaffolds a hosts repository (an example NatsHost manifest with the editor
// schema modeline, copies of the schemas it points at, the validate workflow running the published CLI with
// GitHub annotations, a README and a .gitignore). It never overwrites a file unless --force.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { packagePath } from '../package-root.js';
import { SCHEMA_MODELINE } from '../manifest/schema.js';

/**
 * The example's pinned host key: a real ed25519 public key whose private half was thrown away when it was
 * generated, so that no server can present it. The manifest validates; natsfleet refuses to connect until
 * the line is replaced by the one `natsfleet hostkey scan` prints.
 */
export const PLACEHOLDER_HOST_KEY =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBloWavC7MINJEZBmYIE428htfZJEIyPmrwa6AklhSyB ' +
  'placeholder-replace-with-natsfleet-hostkey-scan';

const packageVersion = (): string => JSON.parse(readFileSync(packagePath('package.json'), 'utf8')).version;

const exampleManifest = () => `${SCHEMA_MODELINE}
# An example NatsHost, written by \`natsfleet init\`. One file per host: hosts/<metadata.name>.yaml.
# Before deploying it: set ssh.host to your server, replace ssh.hostKey with the line
# \`natsfleet hostkey scan HOST\` prints (the key below is a placeholder no server has: natsfleet refuses
# to connect until it is replaced), then rename the file and metadata.name together.
apiVersion: natsfleet/v1alpha1
kind: NatsHost
metadata:
  name: example
  labels: {env: example}
spec:
  ssh:
    host: 203.0.113.10 # a documentation address (TEST-NET-3): put your server's name or address here
    port: 22
    user: root # or a user with passwordless sudo: natsfleet runs its scripts through sudo -n
    hostKey: ${PLACEHOLDER_HOST_KEY}
  nats:
    image: nats:2.10.27
    clientPort: 4222
    httpPort: 8222
    httpBind: 127.0.0.1 # monitoring on the host's loopback only
    auth:
      # A secret is never written here: {env: NAME} is read from the environment of whoever runs
      # natsfleet (the controller: /etc/natsfleet/natsfleet.env), {file: PATH} from a file under
      # /etc/natsfleet/secrets on that machine, {bcrypt: HASH} is a hash NATS checks.
      token: {env: NATS_EXAMPLE_TOKEN}
    jetstream:
      enabled: true
      maxMemory: 256MB
      maxFile: 1GB
  policy:
    selfHeal: false # true: natsfleet corrects drift on this host by itself
  state: present # absent: stop and remove NATS from the host (its data is kept)
`;

const validateWorkflow = (
  version: string,
) => `# Validates the manifests under hosts/ on every pull request and push to main: one GitHub annotation
# per problem, on its file and line, and a failing check when a manifest is invalid. It runs the
# published natsfleet CLI, pinned: bump the version together with the controller's.
# Under a controller with a non-default secret policy, pass the same flags to validate
# (--secrets-dir DIR, --secret-env-pattern REGEX, --allowed-root DIR).
name: validate hosts
on:
  pull_request:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  validate:
    runs-on: ubuntu-24.04
    timeout-minutes: 10
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 22
      - run: npx --yes natsfleet@${version} validate hosts --format github
`;

const readme = (version: string) => `# NATS hosts

The NATS servers of this fleet, one manifest per host under \`hosts/\`, deployed by
[natsfleet](https://www.npmjs.com/package/natsfleet) ${version}: a pull request shows what would change on
each host, a merge deploys it, drift is reported as an issue.

| path | what it holds |
| --- | --- |
| \`hosts/<name>.yaml\` | one \`NatsHost\` per server (a \`NatsCluster\` joins several by routes) |
| \`schemas/\` | the JSON Schemas of this natsfleet version, for your editor (the first line of each manifest) |
| \`.github/workflows/validate.yml\` | checks every manifest on pull requests, with annotations on the lines |

## Add a host

1. The host: Debian or Ubuntu with systemd, the Docker engine and curl (and \`docker compose\` or
   \`docker-compose\` when the manifest enables the proxy), reachable over SSH with the key natsfleet
   uses, as root or as a user with passwordless sudo (\`spec.ssh.user\`).
2. Pin its SSH host key: \`natsfleet hostkey scan HOST\` prints the fingerprint and a ready
   \`hostKey:\` line. Compare the fingerprint on the host (\`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`)
   before trusting it.
3. Rename \`hosts/example.yaml\` (or copy a manifest) to \`hosts/<name>.yaml\`, set
   \`metadata.name: <name>\`, \`spec.ssh.host\` and the \`hostKey:\` line. Keep the first line
   (\`# yaml-language-server: ...\`): your editor checks and completes the manifest with it.
4. Secrets never go in Git: \`{env: NATS_...}\` is read from the environment of whoever runs natsfleet,
   \`{file: /etc/natsfleet/secrets/...}\` from a file on that machine, \`{bcrypt: HASH}\` is safe to commit.
5. \`natsfleet validate hosts\`, then \`natsfleet plan --hosts hosts --ssh-key KEY\` shows what would
   change on the host, read-only. \`natsfleet apply\` does it by hand; usually the controller does.

Never merge \`hosts/example.yaml\` as it is: the controller would try to deploy it (and fail on its
placeholder host key).

## How it is deployed

The natsfleet controller polls this repository (or is woken by its webhook). On a pull request it
validates and plans the changed hosts and comments the plan, with a commit status per host; nothing
is applied. On a merge it applies every host whose manifest changed, one SSH connection each, and
reports the result on the pull request. Every few minutes it compares every host with this
repository and opens one issue per drifted host (or corrects it, with \`policy.selfHeal: true\`).

## Upgrading natsfleet

Bump the version in \`.github/workflows/validate.yml\` together with the controller, and refresh the
schemas: \`cp "$(npm root -g)/natsfleet/schemas/"*.schema.json schemas/\`.
`;

const GITIGNORE = `# Secrets never go in this repository: manifests name them ({env: NAME}, {file: PATH}).
.env
*.env
secrets/
*.pem
*.key
id_rsa
id_ecdsa
id_ed25519
node_modules/
`;

export interface ScaffoldFile {
  /** Path relative to the repository root. */
  path: string;
  content: string;
}

/** Every file `natsfleet init` writes, relative to DIR. */
export function scaffoldFiles(version = packageVersion()): ScaffoldFile[] {
  const schema = (name: string) => ({
    path: `schemas/${name}`,
    content: readFileSync(packagePath('schemas', name), 'utf8'),
  });
  return [
    { path: 'hosts/example.yaml', content: exampleManifest() },
    schema('natshost.schema.json'),
    schema('natscluster.schema.json'),
    { path: '.github/workflows/validate.yml', content: validateWorkflow(version) },
    { path: 'README.md', content: readme(version) },
    { path: '.gitignore', content: GITIGNORE },
  ];
}

/** Writes the scaffold under `dir`; returns the exit code. Existing files are refused unless `force`. */
export function initRepository(
  dir: string,
  force: boolean,
  out: (line: string) => void,
  err: (line: string) => void,
): number {
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    err(`error: ${dir}: not a directory`);
    return 1;
  }
  const files = scaffoldFiles();
  // As the user gave DIR: `init` shows hosts/..., `init site` site/hosts/..., `init /srv/x` /srv/x/hosts/...
  const show = (p: string) => join(dir, p);
  if (!force) {
    const taken = files.filter((f) => existsSync(join(dir, f.path)));
    for (const f of taken) err(`error: ${show(f.path)} already exists (use --force to overwrite it)`);
    if (taken.length) return 1;
  }
  for (const f of files) {
    const at = join(dir, f.path);
    mkdirSync(dirname(at), { recursive: true });
    // 'wx' fails on a file that appeared since the check: never overwritten without --force.
    writeFileSync(at, f.content, { flag: force ? 'w' : 'wx', mode: 0o644 });
    out(`wrote ${show(f.path)}`);
  }
  const hosts = show('hosts');
  out('');
  out('next:');
  out(`  1. natsfleet hostkey scan HOST            (prints a hostKey: line; check its fingerprint on the host)`);
  out(`  2. mv ${hosts}/example.yaml ${hosts}/NAME.yaml; set metadata.name, spec.ssh.host and the hostKey: line`);
  out(`  3. natsfleet validate ${hosts}`);
  out(`  4. NATS_EXAMPLE_TOKEN=... natsfleet plan --hosts ${hosts} --ssh-key KEY   (read-only)`);
  out(`  5. commit and push; the controller deploys what is merged (see ${show('README.md')})`);
  return 0;
}

export function initCommand(
  program: Command,
  out: (line: string) => void,
  err: (line: string) => void,
  setCode: (c: number) => void,
): void {
  program
    .command('init')
    .description('scaffold a hosts repository in DIR: an example manifest, schemas, the validate workflow, a README')
    .argument('[dir]', 'repository directory (created if missing)', '.')
    .option('--force', 'overwrite files that already exist')
    .action((dir: string, opts: { force?: boolean }) => {
      setCode(initRepository(dir, Boolean(opts.force), out, err));
    });
}
