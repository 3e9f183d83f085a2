// Owns running the controller process: wiring config to the Git source, SSH pool, GitHub reporter,
// state store and HTTP endpoint, then looping (poll interval, or at once on a webhook) until stopped.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { GitSource, redactUrl } from '../source/git-source.js';
import { SessionPool } from '../reconcile/pool.js';
import { resolveSshAuth } from '../transport/auth.js';
import { GitHubReporter, makeOctokit } from '../report/github.js';
import type { ControllerConfig } from './config.js';
import { Controller } from './controller.js';
import { startHttp } from './http.js';
import { StateStore, type StateBackend } from './state.js';
import type { Coordinator } from '../ha/coordinator.js';

export interface RunningController {
  controller: Controller;
  /** Runs one tick now (also what a webhook does). */
  trigger(): void;
  /** Resolves after the next completed tick. */
  nextTick(): Promise<void>;
  stop(): Promise<void>;
  url?: string;
  /** This replica's name, when replicas share the work (state in NATS). */
  replica?: string;
}

export async function startController(
  cfg: ControllerConfig,
  log: Logger = pino({ base: { app: 'natsfleet' } }),
): Promise<RunningController> {
  let github: GitHubReporter | undefined;
  if (cfg.github) {
    const client = await makeOctokit({
      repository: cfg.github.repository,
      apiUrl: cfg.github.apiUrl,
      token: cfg.github.token,
      app: cfg.github.appId
        ? {
            appId: cfg.github.appId,
            privateKey: readFileSync(cfg.github.appPrivateKeyFile!, 'utf8'),
            installationId: cfg.github.installationId!,
          }
        : undefined,
    });
    // As a GitHub App, natsfleet reports with check runs; with a token, with commit statuses.
    github = GitHubReporter.of(client, cfg.github.repository);
  }
  // Checked before anything runs: a key problem stops the controller with one line (SshKeyError).
  const pool = new SessionPool(resolveSshAuth({ keyPath: cfg.sshKey }));
  // With state in NATS, this process is one replica: leases decide what it leads and which hosts it holds.
  let coordinator: Coordinator | undefined;
  let store: StateBackend;
  if (cfg.stateNats) {
    const [{ Coordinator }, { KvStateStore }] = await Promise.all([
      import('../ha/coordinator.js'),
      import('../ha/kv-state.js'),
    ]);
    coordinator = await Coordinator.start({
      url: cfg.stateNats.url,
      credentials: cfg.stateNats.credentials,
      bucket: cfg.stateNats.bucket,
      replica: cfg.replicaId,
      ttlMs: cfg.stateNats.leaseTtlSec * 1000,
      streamReplicas: cfg.stateNats.replicas,
      log,
    });
    store = new KvStateStore(coordinator, log);
  } else store = new StateStore(cfg.stateDir);
  const controller = new Controller({
    source: new GitSource(cfg.repo, join(cfg.stateDir, 'repo.git'), cfg.branch, cfg.hostsDir),
    github,
    pool,
    store,
    replication: coordinator,
    policy: cfg.policy,
    log,
    concurrency: cfg.concurrency,
    driftIntervalMs: cfg.driftIntervalSec * 1000,
    planUntrustedLive: cfg.planUntrustedLive,
    rollout: cfg.rollout,
    prune: cfg.prune,
  });

  let stopped = false;
  let wake: (() => void) | undefined;
  let waiters: (() => void)[] = [];
  let lastTickOk = true;
  // A trigger that arrives while a tick runs is remembered, so the next tick starts right after it.
  let triggered = false;
  const trigger = () => {
    triggered = true;
    wake?.();
  };
  // One reconcile at a time: the loop's ticks and the API's syncs take turns.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const mine = turn.then(fn);
    turn = mine.catch(() => {});
    return mine;
  };
  const loop = (async () => {
    while (!stopped) {
      triggered = false;
      try {
        await exclusive(() => controller.tick());
        lastTickOk = true;
      } catch (e) {
        lastTickOk = false;
        // A git error may quote the repository URL: never its credentials.
        log.error({ err: redactUrl((e as Error).message) }, 'loop iteration failed');
      }
      const w = waiters;
      waiters = [];
      w.forEach((f) => f());
      if (stopped) break;
      if (triggered) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, cfg.pollIntervalSec * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  })();

  let server: Awaited<ReturnType<typeof startHttp>> | undefined;
  if (cfg.listen) {
    const [host, port] = cfg.listen.split(':');
    server = await startHttp({
      host,
      port: Number(port),
      metrics: controller.metrics,
      webhookSecret: cfg.webhookSecret,
      trigger: (event) => {
        log.info({ event }, 'webhook: polling now');
        trigger();
      },
      healthy: () => lastTickOk,
      api: cfg.apiToken
        ? {
            token: cfg.apiToken,
            // A suspension answers at once, also during a long rollout (which finishes what it started).
            suspend: (host, reason) => controller.suspend(host, reason),
            resume: async (host) => {
              const was = await controller.resume(host);
              trigger(); // its deploy, if the branch moved on meanwhile, starts now
              return was;
            },
            sync: (hosts) => exclusive(() => controller.sync(hosts)),
            hosts: () => controller.hostsView(),
          }
        : undefined,
    });
  }
  const addr = server?.address();
  return {
    controller,
    trigger,
    nextTick: () => new Promise<void>((resolve) => waiters.push(resolve)),
    url: addr && typeof addr === 'object' ? `http://${addr.address}:${addr.port}` : undefined,
    replica: coordinator?.id,
    stop: async () => {
      stopped = true;
      trigger();
      await loop;
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await pool.closeAll();
      await coordinator?.stop();
    },
  };
}
