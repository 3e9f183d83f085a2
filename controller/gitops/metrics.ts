// Owns the controller's Prometheus metrics (prom-client, one registry per controller): per-host sync
// and health series an alert can name a host by (Argo CD's style: one series per status, 1 for the
// current one), the last apply per host, histograms of phase and apply durations, aggregates, loop
// counters, build info, the process's default metrics, and with replicas whether this one leads. The
// controller sets plain values here.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HealthStatus, SyncStatus } from '../plan/types.js';

/** A host whose manifest left the branch: it runs on, natsfleet no longer manages it. */
export type HostSync = SyncStatus | 'Unmanaged';
export type HostHealth = HealthStatus | 'Unknown';

const SYNC: readonly HostSync[] = ['Synced', 'OutOfSync', 'Unknown', 'Unmanaged'];
const HEALTH: readonly HostHealth[] = ['Healthy', 'Progressing', 'Degraded', 'Missing', 'Unknown'];
const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

interface HostEntry {
  sync: HostSync;
  health: HostHealth;
  lastApply?: number;
}

export type Phase = 'deploy' | 'pull-plan' | 'drift' | 'tick';

export class Metrics {
  readonly registry = new Registry();
  private hosts = new Map<string, HostEntry>();
  private suspended = new Set<string>();
  lastSuccessfulSync = 0;
  ticks = 0;
  errors = 0;
  private readonly phase: Histogram<'phase'>;
  private readonly apply: Histogram<'outcome'>;

  constructor(build: { version: string } = { version: 'dev' }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters (promtool's lint refuses them); their per-type siblings stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'natsfleet_build_info',
      help: 'natsfleet build: version and Node.js version (always 1).',
      labelNames: ['version', 'nodejs'],
      registers,
    }).set({ version: build.version, nodejs: process.versions.node }, 1);
    this.phase = new Histogram({
      name: 'natsfleet_reconcile_duration_seconds',
      help: 'Time spent per controller phase (deploy, pull-plan, drift, tick).',
      labelNames: ['phase'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.apply = new Histogram({
      name: 'natsfleet_apply_duration_seconds',
      help: 'Time one host apply took, by outcome.',
      labelNames: ['outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const hosts = () => [...this.hosts];
    // One series per host and status, 1 for the current one (an alert selects status="Degraded").
    const statusGauge = (name: string, what: string, statuses: readonly string[], of: (h: HostEntry) => string) =>
      new Gauge({
        name,
        help: `${what} per host: 1 for the current status, 0 for the others.`,
        labelNames: ['host', 'status'],
        registers,
        collect() {
          this.reset();
          for (const [host, h] of hosts())
            for (const status of statuses) this.set({ host, status }, of(h) === status ? 1 : 0);
        },
      });
    statusGauge('natsfleet_host_sync_status', 'Sync status', SYNC, (h) => h.sync);
    statusGauge('natsfleet_host_health_status', 'Health status', HEALTH, (h) => h.health);
    new Gauge({
      name: 'natsfleet_host_last_apply_timestamp_seconds',
      help: 'When natsfleet last applied to the host (this controller process), as a Unix time.',
      labelNames: ['host'],
      registers,
      collect() {
        this.reset();
        for (const [host, h] of hosts()) if (h.lastApply) this.set({ host }, Math.floor(h.lastApply / 1000));
      },
    });
    const suspended = () => [...this.suspended];
    new Gauge({
      name: 'natsfleet_host_suspended',
      help: 'Hosts whose deploys and self-heal are suspended (spec.policy.suspend, or natsfleet suspend): 1.',
      labelNames: ['host'],
      registers,
      collect() {
        this.reset();
        for (const host of suspended()) this.set({ host }, 1);
      },
    });
    new Gauge({
      name: 'natsfleet_hosts',
      help: 'Hosts per sync and health status.',
      labelNames: ['sync', 'health'],
      registers,
      collect() {
        this.reset();
        for (const [, h] of hosts()) this.inc({ sync: h.sync, health: h.health });
      },
    });
    const lastSync = () => this.lastSuccessfulSync;
    const ticks = () => this.ticks;
    const errors = () => this.errors;
    new Gauge({
      name: 'natsfleet_last_successful_sync_timestamp_seconds',
      help: 'When every host was last applied and healthy, as a Unix time (0: not yet).',
      registers,
      collect() {
        this.set(Math.floor(lastSync() / 1000));
      },
    });
    new Counter({
      name: 'natsfleet_loop_ticks_total',
      help: 'Passes of the controller loop.',
      registers,
      collect() {
        this.reset();
        this.inc(ticks());
      },
    });
    new Counter({
      name: 'natsfleet_loop_errors_total',
      help: 'Failures of a phase, a pull request or a report (each handled; the loop goes on).',
      registers,
      collect() {
        this.reset();
        this.inc(errors());
      },
    });
    const replica = () => this.replica;
    new Gauge({
      name: 'natsfleet_replica_leading',
      help: 'With replicas sharing state in NATS: 1 while this replica leads (Git and GitHub work), else 0.',
      labelNames: ['replica'],
      registers,
      collect() {
        this.reset();
        const r = replica();
        if (r) this.set({ replica: r.id }, r.leading() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'natsfleet_replica_hosts_held',
      help: 'With replicas sharing state in NATS: hosts whose lease this replica holds.',
      labelNames: ['replica'],
      registers,
      collect() {
        this.reset();
        const r = replica();
        if (r) this.set({ replica: r.id }, r.held());
      },
    });
  }

  /** With replicas: this one's name, whether it leads and how many hosts it holds (read when scraped). */
  replica?: { id: string; leading: () => boolean; held: () => number };

  observeDuration(phase: Phase, seconds: number) {
    this.phase.observe({ phase }, seconds);
  }

  /** One host's apply: its outcome and duration, and when it happened. */
  observeApply(host: string, outcome: string, seconds: number, at: number) {
    this.apply.observe({ outcome }, seconds);
    const h = this.hosts.get(host);
    if (h) h.lastApply = at;
  }

  setHost(host: string, sync: SyncStatus, health: HostHealth) {
    this.hosts.set(host, { ...this.hosts.get(host), sync, health });
  }

  setSuspended(hosts: readonly string[]) {
    this.suspended = new Set(hosts);
  }

  /** Hosts no longer in the branch's manifests stay visible as Unmanaged (they keep running). */
  markUnmanaged(managed: readonly string[]) {
    const keep = new Set(managed);
    for (const [host, h] of this.hosts)
      if (!keep.has(host)) this.hosts.set(host, { ...h, sync: 'Unmanaged', health: 'Unknown' });
  }

  /** A host decommissioned after its manifest left the branch (prune): no longer reported at all. */
  forget(host: string) {
    this.hosts.delete(host);
  }

  /** The text exposition format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
