// Owns the health verdict of a host from its facts, in Argo CD's closed vocabulary:
// Healthy | Progressing | Degraded | Missing, with the reason for every verdict but Healthy.
import type { DesiredHost } from '../render/artifact.js';
import type { HostFacts } from '../observe/facts.js';
import type { HealthStatus } from './types.js';

export interface HealthDetail {
  status: HealthStatus;
  /** Why the host is not Healthy, in words an operator acts on. */
  reason?: string;
}

export function healthDetail(d: DesiredHost, f: HostFacts): HealthDetail {
  const unit = d.nats.unit;
  if (d.state === 'absent') return { status: 'Missing', reason: 'state: absent' };
  const u = f.unit;
  if (u.loadState !== 'loaded' && !f.container.exists)
    return { status: 'Missing', reason: `${unit} is not installed and no container ${d.nats.containerName} exists` };
  if (u.activeState === 'failed') return { status: 'Degraded', reason: `${unit} failed (${u.subState})` };
  if (u.activeState === 'activating' || u.activeState === 'reloading')
    return { status: 'Progressing', reason: `${unit} is ${u.activeState}` };
  if (!f.container.exists || !f.container.running)
    return u.activeState === 'active'
      ? { status: 'Progressing', reason: `${unit} is active, container ${d.nats.containerName} not running yet` }
      : {
          status: 'Missing',
          reason: `${unit} is ${u.activeState} and container ${d.nats.containerName} is not running`,
        };
  if (f.healthz?.status === 200) {
    if (d.proxy && !f.proxy.container.running)
      return { status: 'Degraded', reason: `the proxy container ${d.proxy.containerName} is not running` };
    return { status: 'Healthy' };
  }
  return {
    status: 'Degraded',
    reason: f.healthz
      ? `NATS /healthz answers ${f.healthz.status || 'nothing'}${healthzText(f.healthz.body)}`
      : 'NATS /healthz was not asked',
  };
}

/** NATS's own words from a /healthz answer ({"status":"unavailable","error":"JetStream ..."}). */
function healthzText(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: string };
    return j.error ? `: ${j.error}` : '';
  } catch {
    return '';
  }
}

export const healthOf = (d: DesiredHost, f: HostFacts): HealthStatus => healthDetail(d, f).status;
