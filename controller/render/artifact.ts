// Owns the Artifact and DesiredHost values: every file and directory natsfleet puts on a host,
// with its remote path, content, mode and owner, and what verification expects of the host after.
export type ArtifactId =
  'nats-config' | 'nats-unit' | 'proxy-compose' | 'proxy-env' | 'proxy-site' | 'tls-watch' | 'tls-reload';

export interface FileArtifact {
  id: ArtifactId;
  path: string;
  content: string;
  /** Octal string such as "0644". */
  mode: string;
  owner: string;
  group: string;
  /** Content holds a plaintext secret: never shown unredacted. */
  sensitive: boolean;
  /** The same file rendered with every secret replaced by a placeholder naming its reference: what natsfleet shows. */
  display: string;
}

export interface DirArtifact {
  path: string;
  mode: string;
  owner: string;
  group: string;
}

export interface NatsService {
  unit: string;
  confFile: string;
  /** Where the container sees the config (the config directory is mounted at /etc/nats). */
  containerConfFile: string;
  unitPath: string;
  containerName: string;
  image: string;
  pullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  clientPort: number;
  httpPort: number;
  httpBind: string;
  serverName: string;
  /** How long a stop may take (lame duck plus margin), in seconds. */
  stopTimeoutSec: number;
  /** Read-only `--mount`s of TLS material (the config test needs them too: nats-server -t loads certificates). */
  tlsMounts: string[];
}

export interface ProxyService {
  dir: string;
  image: string;
  containerName: string;
  secretsVolume: string;
  domain: string;
}

/**
 * What verification checks on the host after an apply, beyond the service's name and image (in
 * `nats`): decided by renderHost from the manifest, so apply never reads the manifest itself.
 */
export interface VerifyExpectations {
  /**
   * JetStream as /jsz must show it (undefined: disabled); each limit in bytes, when the manifest sets it;
   * `storeDir`, the host directory NATS keeps its store in (its files lie in <storeDir>/jetstream).
   */
  jetstream?: { maxMemoryBytes?: number; maxFileBytes?: number; storeDir: string };
  /** Which credentials the server must accept (and which it must refuse). */
  auth: { kind: 'none' } | { kind: 'token' } | { kind: 'user-password'; user: string };
}

/** The host's place in a NatsCluster: what facts, plans and rollouts check of its routes. */
export interface ClusterMembership {
  name: string;
  routePort: number;
  routeAddress: string;
  /** The other members, with their NATS server names. */
  peers: { host: string; serverName: string; routeAddress: string }[];
  /** Every member's host name, in the manifest's order. */
  members: string[];
}

/** TLS on the client port: where the certificate lies on the host and how NATS is kept serving it. */
export interface DesiredTls {
  source: 'proxy' | 'files';
  /** The certificate chain on the host, as NATS reads it: watched for renewals, compared with what NATS serves. */
  certPath: string;
  /** source proxy: certbot's renewal config of the domain, present once certbot obtained the certificate. */
  lineagePath?: string;
  /** The name clients connect to and the certificate must cover (the proxy's domain). */
  serverName?: string;
  handshakeFirst: boolean;
  /** Clients must present a certificate signed by the CA (mutual TLS). */
  verifyClients: boolean;
  /** The path unit that reloads NATS when the certificate changes. */
  watchUnit: string;
  /**
   * The NATS config rendered without its tls block: what the server runs while the proxy obtains its
   * first certificate (first enablement), before one reload switches the client port to TLS.
   */
  withheldConfig: FileArtifact;
  /** Set on the desired state of that first step (see certificateFirst). */
  withheld?: boolean;
}

export interface DesiredHost {
  name: string;
  state: 'present' | 'absent';
  files: FileArtifact[];
  dirs: DirArtifact[];
  /**
   * Dedicated directories outside the operator's allowed roots that natsfleet writes in: each must be
   * missing (natsfleet creates it and records it) or already natsfleet's on the host.
   */
  claims: string[];
  nats: NatsService;
  proxy?: ProxyService;
  verify: VerifyExpectations;
  cluster?: ClusterMembership;
  tls?: DesiredTls;
}

export const MANAGED_HEADER = 'Managed by natsfleet: changes made by hand are reported as drift and may be reverted.';
