// Owns the HostFacts value: everything natsfleet knows about a host after one observe round trip.
/**
 * A managed path on the host: metadata and the SHA-256 of its content (computed on the host), never the
 * content itself: natsfleet shows only what it rendered (the displays in its record).
 */
export interface FileFact {
  exists: boolean;
  /** What is at the path when it exists: only a regular file is ever replaced. */
  kind?: 'file' | 'link' | 'other' | 'unowned';
  mode?: string;
  owner?: string;
  group?: string;
  size?: number;
  sha256?: string;
}

export interface DirFact {
  exists: boolean;
  mode?: string;
  owner?: string;
  group?: string;
  /** In a dedicated directory that is not natsfleet's: not looked at. */
  unowned?: boolean;
}

export interface UnitFact {
  loadState: string;
  activeState: string;
  subState: string;
  unitFileState: string;
  needDaemonReload: boolean;
}

export interface ContainerFact {
  exists: boolean;
  id?: string;
  imageId?: string;
  image?: string;
  running?: boolean;
  startedAt?: string;
  /** Container path -> host path of its bind mounts. */
  mounts?: Record<string, string>;
  /** The program the container runs (its entrypoint: `/nats-server` in the official image). */
  path?: string;
  /** Where it publishes NATS monitoring on the host (`IP:PORT`), when it publishes it. */
  monitorAddress?: string;
}

export interface PortFact {
  port: number;
  held: boolean;
  process?: string;
}

/** A RAFT peer as a leader sees it: `current` once it has caught up. */
export interface ReplicaFact {
  name: string;
  current?: boolean;
  offline?: boolean;
  lag?: number;
}

export interface HttpFact {
  status: number;
  body: string;
}

/** What natsfleet wrote on the host after its last successful apply. */
export interface AppliedRecord {
  revision: string;
  appliedAt: string;
  by: string;
  image: string;
  files: Record<string, { sha256: string; mode: string }>;
  /** Per path, natsfleet's display of what it wrote (secrets replaced by placeholders): shown in diffs. */
  rendered?: Record<string, string>;
  /** /varz config_load_time right after the apply: while it is unchanged, NATS runs what natsfleet wrote. */
  configLoadTime?: string;
}

export interface PendingRecord {
  revision: string;
  since: string;
  actions: string[];
  /** The steps (and `install`) the interrupted apply finished. */
  done?: string[];
}

export interface LockInfo {
  owner: string;
  host: string;
  pid: number;
  token: string;
  since: string;
  /** The lease: past it, an owner on another machine is presumed gone and the lock is taken over. */
  expiresAt?: string;
  /** The controller replica that holds the host's lease in the replicas' KV bucket, if any, and its process. */
  replica?: string;
  session?: string;
}

/** A certificate as natsfleet reports it: never its content, only what identifies it and its dates. */
export interface CertFact {
  /** SHA-256 of the DER, as `AB:CD:…`. */
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  subject: string;
  issuer: string;
  /** DNS names it covers (subjectAltName). */
  names: string[];
}

/** What NATS serves on its client port: a certificate, plaintext, or why the probe failed. */
export type ServedTls = { cert: CertFact } | { plaintext: true } | { error: string };

export interface TlsFact {
  /** The certificate file on the host (its first certificate); undefined when missing or not a certificate. */
  file?: CertFact;
  /** source proxy: certbot has a lineage for the domain (it obtained the certificate). */
  lineage: boolean;
  /** Filled by the observer's TLS probe through an SSH port forward (not the script). */
  served?: ServedTls;
}

export interface HostFacts {
  os: { id: string; versionId: string; pretty: string };
  uid: number;
  docker: { installed: boolean; running: boolean; version?: string };
  compose: 'plugin' | 'standalone' | 'none';
  curl: boolean;
  files: Record<string, FileFact>;
  dirs: Record<string, DirFact>;
  unit: UnitFact;
  container: ContainerFact;
  /** Id of the desired image when present on the host. */
  imageId?: string;
  proxy: { container: ContainerFact; volume: boolean };
  ports: PortFact[];
  healthz?: HttpFact;
  varz?: {
    server_id?: string;
    server_name?: string;
    version?: string;
    config_load_time?: string;
    config_digest?: string;
    start?: string;
    tls_required?: boolean;
    /** Route settings: TLS required on routes. */
    cluster?: { tls_required?: boolean };
  };
  jsz?: {
    config?: { max_memory?: number; max_storage?: number; store_dir?: string };
    /** What the running JetStream holds (a store that would be hidden by a move must be empty). */
    streams?: number;
    bytes?: number;
    /** The JetStream meta group as this server sees it (cluster members only). */
    meta_cluster?: {
      name?: string;
      leader?: string;
      cluster_size?: number;
      /** Only on the meta leader: how it sees the other peers. */
      replicas?: ReplicaFact[];
    };
    /** Cluster members: every stream (and its consumers) this server holds a replica of. */
    account_details?: {
      name?: string;
      stream_detail?: {
        name: string;
        cluster?: { leader?: string; replicas?: ReplicaFact[] };
        consumer_detail?: { name: string; cluster?: { leader?: string; replicas?: ReplicaFact[] } }[];
      }[];
    }[];
  };
  /** Cluster members: the server's routes (several per peer from 2.10: route pooling). */
  routez?: { routes?: { remote_id?: string; remote_name?: string }[] };
  /** Hosts whose desired state has TLS on the client port. */
  tls?: TlsFact;
  /** The path unit that reloads NATS on a certificate renewal (client or route TLS): asked on every host. */
  tlsWatch?: { activeState: string; unitFileState: string };
  record?: AppliedRecord;
  /** Dedicated directories natsfleet created on this host (its ownership record). */
  ownedDirs: string[];
  /** For each of the desired state's claims: whether the directory exists. */
  claims: Record<string, boolean>;
  pending?: PendingRecord;
  lock?: LockInfo;
  /** Age in seconds of the lock directory when one exists (also without an owner file). */
  lockAgeSec?: number;
}
