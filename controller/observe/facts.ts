// Owns the HostFacts value: everything natsfleet knows about a host after one observe round trip.
export interface FileFact {
  exists: boolean;
  mode?: string;
  owner?: string;
  group?: string;
  /** Full content (managed files are small; capped at 1 MiB). */
  content?: string;
  sha256?: string;
}

export interface DirFact {
  exists: boolean;
  mode?: string;
  owner?: string;
  group?: string;
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
}

export interface PortFact {
  port: number;
  held: boolean;
  process?: string;
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
}

export interface PendingRecord {
  revision: string;
  since: string;
  actions: string[];
}

export interface LockInfo {
  owner: string;
  host: string;
  pid: number;
  token: string;
  since: string;
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
  varz?: { server_name?: string; version?: string; config_load_time?: string; start?: string };
  jsz?: { config?: { max_memory?: number; max_storage?: number; store_dir?: string } };
  record?: AppliedRecord;
  pending?: PendingRecord;
  lock?: LockInfo;
}
