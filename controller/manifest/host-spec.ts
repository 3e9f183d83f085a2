// Owns HostSpec: a validated NatsHost with every default applied, the value every later stage
// works on. The schema is the one source of literal defaults (ajv fills them in while validating);
// only the defaults derived from other fields are computed here.
import { posix } from 'node:path';
import type { Nats, NatsHost, Proxy, Secret, Ssh } from './natshost.gen.js';

type JetStream = NonNullable<Nats['jetstream']>;
type Tls = NonNullable<Nats['tls']>;

export interface ClusterMember {
  host: string;
  routeAddress: string;
  /** The member's NATS server_name (known once every member's manifest is loaded). */
  serverName?: string;
}

/** Route TLS of a cluster: the same paths on every member's host. */
export interface RouteTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** What a member's rendering needs of its cluster. */
export interface HostCluster {
  name: string;
  file: string;
  routePort: number;
  /** How the other members reach this one. */
  routeAddress: string;
  /** The other members. */
  peers: ClusterMember[];
  /** Every member's host name, in the manifest's order. */
  members: string[];
  routeAuth?: { user: string; password: Secret };
  /** natsfleet's system account user (peer removal); members then render client users as a list. */
  systemAccount?: { user: string; password: Secret };
  tls?: RouteTls;
  rollout: { maxUnavailable: number; settle: string; timeout: string; settleMs: number; timeoutMs: number };
}

export interface HostSpec {
  name: string;
  /** Repository-relative path of the manifest, e.g. hosts/nats-eu-1.yaml. */
  file: string;
  labels: Record<string, string>;
  /** proxyJump's port defaulted; become and proxyJump.user are defaulted by the transport (see SshTarget). */
  ssh: Required<Omit<Ssh, 'become' | 'proxyJump'>> & Pick<Ssh, 'become' | 'proxyJump'>;
  nats: Required<Omit<Nats, 'auth' | 'maxPayload' | 'maxConnections' | 'jetstream' | 'lameDuck' | 'logging' | 'tls'>> &
    Pick<Nats, 'auth' | 'maxPayload' | 'maxConnections'> & {
      tls: Required<Pick<Tls, 'enabled' | 'source' | 'verify' | 'handshakeFirst'>> &
        Pick<Tls, 'certFile' | 'keyFile' | 'caFile'>;
      jetstream: Required<Pick<JetStream, 'enabled' | 'storeDir'>> & Pick<JetStream, 'maxMemory' | 'maxFile'>;
      lameDuck: Required<NonNullable<Nats['lameDuck']>>;
      logging: Required<NonNullable<Nats['logging']>>;
    };
  proxy: Required<Omit<Proxy, 'domain' | 'email'>> & Pick<Proxy, 'domain' | 'email'>;
  policy: { selfHeal: boolean; suspend: boolean };
  state: 'present' | 'absent';
  /** Set when a NatsCluster lists this host as a member. */
  cluster?: HostCluster;
}

/** Untagged or `:latest` images are pulled on every start, pinned ones only when missing (Kubernetes' rule). */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const tag = last.includes(':') ? last.slice(last.indexOf(':') + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/** Applies the derived defaults. `doc` must have passed schema validation, which filled in the literal ones. */
export function toHostSpec(doc: NatsHost, file: string): HostSpec {
  const { ssh, proxy, policy, state } = doc.spec;
  const n = doc.spec.nats!;
  const js = n.jetstream!;
  return {
    name: doc.metadata.name,
    file,
    labels: doc.metadata.labels ?? {},
    ssh: ssh as HostSpec['ssh'],
    nats: {
      image: n.image!,
      imagePullPolicy: n.imagePullPolicy ?? defaultPullPolicy(n.image!),
      containerName: n.containerName!,
      serverName: n.serverName ?? doc.metadata.name,
      clientPort: n.clientPort!,
      httpPort: n.httpPort!,
      httpBind: n.httpBind ?? (proxy!.enabled ? '127.0.0.1' : '0.0.0.0'),
      confFile: n.confFile!,
      dataDir: n.dataDir!,
      auth: n.auth,
      tls: n.tls as HostSpec['nats']['tls'],
      jetstream: { ...js, enabled: js.enabled!, storeDir: js.storeDir ?? posix.join(n.dataDir!, 'jetstream') },
      maxPayload: n.maxPayload,
      maxConnections: n.maxConnections,
      lameDuck: n.lameDuck as HostSpec['nats']['lameDuck'],
      logging: n.logging as HostSpec['nats']['logging'],
    },
    proxy: proxy as HostSpec['proxy'],
    policy: policy as HostSpec['policy'],
    state: state!,
  };
}
