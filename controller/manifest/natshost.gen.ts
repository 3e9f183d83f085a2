// Generated from schemas/natshost.schema.json by `npm run gen:types`. Do not edit.
/* eslint-disable */

export type LabelValue = string;
export type AbsolutePath = string;
export type Size = string | number;

/**
 * One NATS server on one Linux host, reconciled by natsfleet over SSH; several join a cluster through a NatsCluster manifest.
 */
export interface NatsHost {
  apiVersion: 'natsfleet/v1alpha1';
  kind: 'NatsHost';
  metadata: {
    /**
     * DNS label, unique in the repository and equal to the file name (hosts/<name>.yaml).
     */
    name: string;
    /**
     * Free-form string labels, used to select hosts.
     */
    labels?: {
      [k: string]: LabelValue;
    };
  };
  spec: {
    ssh: Ssh;
    nats?: Nats;
    proxy?: Proxy;
    policy?: {
      /**
       * Correct drift automatically (true) or only report it (false).
       */
      selfHeal?: boolean;
      /**
       * Stop deploying and self-healing this host (its drift is still reported); set it back to false to resume, which deploys what the branch asks for. A cluster member suspends its whole cluster's rollouts.
       */
      suspend?: boolean;
    };
    /**
     * present: run NATS on the host; absent: decommission (stop, disable, remove unit, container and proxy files; data is kept).
     */
    state?: 'present' | 'absent';
  };
}
/**
 * How the controller reaches the host. The host key is pinned: natsfleet refuses any other key, at every hop.
 */
export interface Ssh {
  host: string;
  port?: number;
  /**
   * The SSH user. Other than root, every remote script runs as root through `sudo -n` (see become): the user needs passwordless sudo.
   */
  user?: string;
  /**
   * The host's public key as in known_hosts or a .pub file: '<type> <base64> [comment]'. Its type is the one algorithm natsfleet accepts from the host. Print it with `natsfleet hostkey scan HOST[:PORT]`.
   */
  hostKey: string;
  /**
   * Run every remote script as root through `sudo -n` (it fails instead of asking for a password). Default: true when user is not root. natsfleet needs root (Docker, systemd, files): false with a non-root user blocks the plan.
   */
  become?: boolean;
  /**
   * Reach the host through this jump host (ssh -J): natsfleet connects to it with its own pinned key, then forwards to spec.ssh.host:port (as the jump host resolves it) and checks the host's pinned key there. Changing it in a pull request makes that pull request untrusted, like a change of host or hostKey.
   */
  proxyJump?: {
    host: string;
    port?: number;
    /**
     * Default: spec.ssh.user.
     */
    user?: string;
    /**
     * The jump host's public key, '<type> <base64> [comment]', pinned like spec.ssh.hostKey.
     */
    hostKey: string;
  };
}
export interface Nats {
  /**
   * The NATS server image. Required here unless the host's NatsCluster sets it (spec.nats.image there).
   */
  image?: string;
  /**
   * Always: try a pull before every start; IfNotPresent: pull only when the image is missing; Never. Default: Always for ':latest' or untagged images, otherwise IfNotPresent (the Kubernetes rule).
   */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  containerName?: string;
  /**
   * NATS server_name; default metadata.name. Changing it needs a restart.
   */
  serverName?: string;
  clientPort?: number;
  httpPort?: number;
  /**
   * Host address the monitoring port is published on. Default 127.0.0.1 when the proxy is enabled (monitoring has no authentication), otherwise 0.0.0.0.
   */
  httpBind?: string;
  /**
   * NATS config on the host. Its directory is mounted read-only at /etc/nats in the container (a directory mount, so that atomic replacement is seen).
   */
  confFile?: string;
  /**
   * Data directory on the host, mounted at /data in the container.
   */
  dataDir?: string;
  /**
   * Client authorization: a token, or a user and a password (NATS refuses both). Without it the server is open, and validate warns.
   */
  auth?: {
    token?: Secret;
    user?: string;
    password?: Secret;
  };
  /**
   * TLS on the client port (NATS refuses plaintext clients then). source proxy: the certificate the proxy's certbot obtains for spec.proxy.domain (the proxy must be enabled; its volume is mounted read-only into the NATS container). source files: a certificate, key and CA the operator keeps on the host, inside the controller's allowed roots (key material never in Git). Either way NATS reloads by itself within a minute when the certificate file changes (a systemd path unit natsfleet installs).
   */
  tls?: {
    enabled?: boolean;
    /**
     * Where the certificate comes from: the proxy's certbot (proxy) or files on the host (files).
     */
    source?: 'proxy' | 'files';
    /**
     * source files: the certificate chain (PEM) on the host.
     */
    certFile?: string;
    /**
     * source files: its private key (PEM) on the host.
     */
    keyFile?: string;
    /**
     * CA certificates (PEM) on the host that client certificates must chain to (verify: true).
     */
    caFile?: string;
    /**
     * Require a client certificate signed by caFile (mutual TLS).
     */
    verify?: boolean;
    /**
     * TLS handshake before NATS sends INFO (handshake_first, NATS 2.10.4+; clients must ask for it).
     */
    handshakeFirst?: boolean;
  };
  jetstream?: {
    enabled?: boolean;
    /**
     * Host path inside dataDir; default <dataDir>/jetstream. NATS keeps its files in <storeDir>/jetstream.
     */
    storeDir?: string;
    maxMemory?: Size;
    maxFile?: Size;
  };
  maxPayload?: Size;
  maxConnections?: number;
  /**
   * Graceful shutdown on stop: NATS stops accepting clients, waits gracePeriod, then closes clients over duration.
   */
  lameDuck?: {
    duration?: string;
    gracePeriod?: string;
  };
  logging?: {
    debug?: boolean;
    trace?: boolean;
    logtime?: boolean;
  };
}
/**
 * A secret is never written in Git: {env: NAME} reads the controller's environment, {file: PATH} a file on the controller machine, {bcrypt: HASH} is a bcrypt hash that NATS verifies.
 */
export interface Secret {
  env?: string;
  file?: AbsolutePath;
  bcrypt?: string;
}
/**
 * nginx + certbot (jonasal/nginx-certbot) terminating TLS in front of the monitoring port.
 */
export interface Proxy {
  enabled?: boolean;
  domain?: string;
  email?: string;
  image?: string;
  /**
   * Use Let's Encrypt's staging server (untrusted certificates, generous rate limits).
   */
  staging?: boolean;
  /**
   * Compose project directory.
   */
  dir?: string;
  /**
   * Host directory mounted at /etc/nginx/user_conf.d.
   */
  userConfDir?: string;
  /**
   * Env file of the proxy container.
   */
  envFile?: string;
  /**
   * External Docker volume holding /etc/letsencrypt.
   */
  secretsVolume?: string;
}
