// Test helper: a HostPlan with every field at its quiet value (in sync, healthy, nothing to do), edited.
import type { HostPlan } from '../../controller/plan/types.js';

export const hostPlan = (p: Partial<HostPlan> = {}): HostPlan => ({
  host: 'h',
  revision: 'r',
  state: 'present',
  blocked: [],
  changes: [],
  steps: [],
  drift: [],
  sync: 'Synced',
  health: 'Healthy',
  ...p,
});
