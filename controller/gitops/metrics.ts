// Owns the controller's Prometheus metrics (text exposition format, no client library needed):
// reconcile durations, hosts per sync and health status, last successful sync, loop errors.
import type { HealthStatus, SyncStatus } from '../plan/types.js';

export class Metrics {
  private durations = new Map<string, { sum: number; count: number }>();
  private hosts = new Map<string, { sync: SyncStatus; health: HealthStatus | 'Unknown' }>();
  lastSuccessfulSync = 0;
  ticks = 0;
  errors = 0;

  observeDuration(kind: 'deploy' | 'pull-plan' | 'drift' | 'tick', seconds: number) {
    const d = this.durations.get(kind) ?? { sum: 0, count: 0 };
    d.sum += seconds;
    d.count++;
    this.durations.set(kind, d);
  }

  setHost(host: string, sync: SyncStatus, health: HealthStatus | 'Unknown') {
    this.hosts.set(host, { sync, health });
  }

  render(): string {
    const out: string[] = [
      '# HELP natsfleet_reconcile_duration_seconds Time spent per controller phase.',
      '# TYPE natsfleet_reconcile_duration_seconds summary',
    ];
    for (const [kind, d] of this.durations) {
      out.push(
        `natsfleet_reconcile_duration_seconds_sum{phase="${kind}"} ${d.sum.toFixed(3)}`,
        `natsfleet_reconcile_duration_seconds_count{phase="${kind}"} ${d.count}`,
      );
    }
    out.push('# HELP natsfleet_hosts Hosts per sync and health status.', '# TYPE natsfleet_hosts gauge');
    const counts = new Map<string, number>();
    for (const h of this.hosts.values()) {
      const key = `sync="${h.sync}",health="${h.health}"`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const [k, n] of counts) out.push(`natsfleet_hosts{${k}} ${n}`);
    out.push(
      '# HELP natsfleet_last_successful_sync_timestamp_seconds When every host was last applied and healthy.',
      '# TYPE natsfleet_last_successful_sync_timestamp_seconds gauge',
      `natsfleet_last_successful_sync_timestamp_seconds ${Math.floor(this.lastSuccessfulSync / 1000)}`,
      '# TYPE natsfleet_loop_ticks_total counter',
      `natsfleet_loop_ticks_total ${this.ticks}`,
      '# TYPE natsfleet_loop_errors_total counter',
      `natsfleet_loop_errors_total ${this.errors}`,
    );
    return `${out.join('\n')}\n`;
  }
}
