// Owns the health verdict of a host from its facts, in Argo CD's closed vocabulary:
// Healthy | Progressing | Degraded | Missing.
import type { DesiredHost } from '../render/artifact.js';
import type { HostFacts } from '../observe/facts.js';
import type { HealthStatus } from './types.js';

export function healthOf(d: DesiredHost, f: HostFacts): HealthStatus {
  if (d.state === 'absent') return 'Missing';
  const u = f.unit;
  if (u.loadState !== 'loaded' && !f.container.exists) return 'Missing';
  if (u.activeState === 'failed') return 'Degraded';
  if (u.activeState === 'activating' || u.activeState === 'reloading') return 'Progressing';
  if (!f.container.exists || !f.container.running) return u.activeState === 'active' ? 'Progressing' : 'Missing';
  if (f.healthz?.status === 200) {
    if (d.proxy && !f.proxy.container.running) return 'Degraded';
    return 'Healthy';
  }
  return 'Degraded';
}
