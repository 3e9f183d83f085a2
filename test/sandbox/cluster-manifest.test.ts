// The NatsCluster manifest `sandbox up --cluster NAME` writes, read back as YAML: every host a member
// at its address on the fleet's network, route auth from the password file, the rollout settings.
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { clusterNameProblem, sandboxClusterManifest, sandboxHostNames } from '../../controller/sandbox/fleet.js';

const hosts = sandboxHostNames(3).map((name, i) => ({ name, clusterAddress: `172.18.0.${i + 2}` }));

describe('sandboxClusterManifest', () => {
  it('makes every host a member, reached at its cluster address', () => {
    const doc = load(sandboxClusterManifest('core', hosts, '/fleet/secrets/route-password'));
    expect(doc).toEqual({
      apiVersion: 'natsfleet/v1alpha1',
      kind: 'NatsCluster',
      metadata: { name: 'core', labels: { sandbox: 'true' } },
      spec: {
        members: [
          { host: 'nats-sb-1', routeAddress: '172.18.0.2' },
          { host: 'nats-sb-2', routeAddress: '172.18.0.3' },
          { host: 'nats-sb-3', routeAddress: '172.18.0.4' },
        ],
        routePort: 6222,
        routeAuth: { user: 'route', password: { file: '/fleet/secrets/route-password' } },
        rollout: { maxUnavailable: 1, settle: '5s', timeout: '3m' },
      },
    });
  });

  it('keeps the label and durations strings, as the schema wants them', () => {
    const text = sandboxClusterManifest('core', hosts.slice(0, 1), '/s/route-password');
    const doc = load(text) as { metadata: { labels: { sandbox: unknown } }; spec: { rollout: { settle: unknown } } };
    expect(doc.metadata.labels.sandbox).toBe('true');
    expect(doc.spec.rollout.settle).toBe('5s');
  });

  it.each([
    ['Core', /DNS label/],
    ['core_1', /DNS label/],
    ['-core', /DNS label/],
    ['a'.repeat(64), /DNS label/],
    ['', /DNS label/],
    ['nats-sb-2', /host's name/],
  ])('refuses the name %j', (name, why) => {
    expect(
      clusterNameProblem(
        name,
        hosts.map((h) => h.name),
      ),
    ).toMatch(why);
    expect(() => sandboxClusterManifest(name, hosts, '/s/route-password')).toThrow(why);
  });

  it('takes any DNS label that is not a host name', () => {
    for (const name of ['core', 'c', 'nats-sb-4', 'a'.repeat(63), 'eu-west-1'])
      expect(
        clusterNameProblem(
          name,
          hosts.map((h) => h.name),
        ),
      ).toBeUndefined();
  });
});
