// E2E helpers: a scenario drives one sandbox host through manifests it writes, the library's
// reconcile functions, a root shell on the host, and a real NATS client through an SSH tunnel.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import type { Fleet, SandboxHost } from '../../controller/sandbox/fleet.js';
import { loadManifests } from '../../controller/manifest/load.js';
import { policyResolver } from '../../controller/secrets/resolve.js';
import { loadPolicyFrom } from '../../controller/manifest/policy.js';
import {
  prepareTargets,
  reconcileOne,
  type ReconcileOptions,
  type Target,
} from '../../controller/reconcile/reconcile.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import { SshSession } from '../../controller/transport/ssh.js';
import { openTunnel, type Credentials } from '../../controller/apply/nats-probe.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed YAML manifest, edited freely
type Doc = Record<string, any>;

export class Scenario {
  readonly dir = mkdtempSync(join(tmpdir(), 'nf-e2e-hosts-'));
  readonly pool: SessionPool;
  /** The scenario's root shell session (also for port forwards). */
  shell?: SshSession;
  doc: Doc;

  /** @param image the NATS image the manifest starts with (default: the sandbox manifest's, the oldest) */
  constructor(
    readonly fleet: Fleet,
    readonly host: SandboxHost,
    readonly revision = 'e2e',
    image?: string,
  ) {
    this.pool = new SessionPool({ privateKey: readFileSync(fleet.privateKeyPath) });
    this.doc = load(readFileSync(join(fleet.hostsDir, `${host.name}.yaml`), 'utf8')) as Doc;
    if (image) this.doc.spec.nats.image = image;
  }

  /** Stops and removes what natsfleet and earlier tests left on the host: the next apply starts from nothing. */
  async wipe(): Promise<void> {
    await this.sh(
      'systemctl disable --now nats.service nats-tls-reload.path 2>/dev/null || true; ' +
        'systemctl stop nats-tls-reload.service 2>/dev/null || true; ' +
        'docker rm -f nats nginx-certbot >/dev/null 2>&1 || true; ' +
        'docker volume rm nginx_secrets >/dev/null 2>&1 || true; ' +
        'rm -rf /etc/nats /var/lib/nats /var/lib/natsfleet /etc/systemd/system/nats.service /root/nginx /data/nginx ' +
        '/etc/systemd/system/nats-tls-reload.path /etc/systemd/system/nats-tls-reload.service; ' +
        'systemctl daemon-reload; systemctl reset-failed',
    );
  }

  /** Writes this host's manifest after `edit`, valid or not. */
  write(edit: (d: Doc) => void = () => {}): void {
    edit(this.doc);
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(join(this.dir, `${this.host.name}.yaml`), dump(this.doc));
  }

  /** The flags every CLI command that reaches the hosts of `dir` needs on the sandbox. */
  cliFlags(dir = this.dir): string[] {
    return ['--hosts', dir, '--ssh-key', this.fleet.privateKeyPath, '--secrets-dir', this.fleet.secretsDir];
  }

  /** The sandbox's policy: secret files in the fleet's secrets directory, the default roots. */
  get policy() {
    return loadPolicyFrom({ secretsDir: this.fleet.secretsDir });
  }

  /** Writes this host's manifest after `edit` and returns the prepared target. */
  async manifest(edit: (d: Doc) => void = () => {}): Promise<Target> {
    this.write(edit);
    const files = [{ path: join(this.dir, `${this.host.name}.yaml`), text: dump(this.doc) }];
    const { hosts, problems } = loadManifests(files, this.policy);
    if (problems.some((p) => p.severity === 'error')) throw new Error(JSON.stringify(problems));
    return prepareTargets(hosts, await policyResolver(hosts, this.policy.secrets), this.policy.paths)[0];
  }

  options(apply: boolean, extra: Partial<ReconcileOptions> = {}): ReconcileOptions {
    return { pool: this.pool, revision: this.revision, apply, concurrency: 1, ...extra };
  }

  plan(t: Target) {
    return reconcileOne(t, this.options(false));
  }

  apply(t: Target, extra: Partial<ReconcileOptions> = {}) {
    return reconcileOne(t, this.options(true, extra));
  }

  async sh(cmd: string): Promise<string> {
    if (!this.shell?.isOpen) {
      this.shell = await SshSession.connect(
        { host: '127.0.0.1', port: this.host.sshPort, user: 'root', hostKey: this.host.hostKey },
        { privateKey: readFileSync(this.fleet.privateKeyPath) },
      );
    }
    const r = await this.shell.exec(cmd);
    if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** A NATS client connected through an SSH tunnel to the host's client port. */
  async nats(
    creds: Credentials,
    port = 4222,
    tls?: ConnectionOptions['tls'],
  ): Promise<{ nc?: NatsConnection; error?: string; close: () => Promise<void> }> {
    await this.sh('true');
    const tunnel = await openTunnel(this.shell!, port);
    try {
      const nc = await connect({
        servers: `127.0.0.1:${tunnel.port}`,
        reconnect: false,
        timeout: 5000,
        ...creds,
        ...(tls ? { tls } : {}),
      });
      return {
        nc,
        close: async () => {
          await nc.close();
          await tunnel.close();
        },
      };
    } catch (e) {
      await tunnel.close();
      return { error: (e as { code?: string }).code ?? String(e), close: async () => {} };
    }
  }

  containerStartedAt = () => this.sh("docker inspect --format '{{.State.StartedAt}}' nats");
  token = () => readFileSync(this.fleet.tokenPath, 'utf8').trim();

  async close() {
    this.shell?.close();
    await this.pool.closeAll();
  }
}
