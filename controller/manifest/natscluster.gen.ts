// Generated from schemas/natscluster.schema.json by `npm run gen:types`. Do not edit.
/* eslint-disable */

/**
 * NATS servers of several NatsHosts joined by routes into one cluster (JetStream replicated by RAFT), rolled out member by member without losing quorum.
 */
export interface NatsCluster {
  apiVersion: 'natsfleet/v1alpha1';
  kind: 'NatsCluster';
  metadata: Metadata;
  spec: {
    /**
     * The NatsHosts of the cluster (a host is in at most one cluster). The cluster's NATS name is metadata.name.
     *
     * @minItems 1
     * @maxItems 64
     */
    members: [
      {
        /**
         * metadata.name of a NatsHost in the same directory.
         */
        host: string;
        /**
         * How the other members reach this one: a host name or an IPv4 address (the route port is published there).
         */
        routeAddress: string;
      },
      ...{
        /**
         * metadata.name of a NatsHost in the same directory.
         */
        host: string;
        /**
         * How the other members reach this one: a host name or an IPv4 address (the route port is published there).
         */
        routeAddress: string;
      }[],
    ];
    /**
     * Host port of the routes (published to the container's 6222).
     */
    routePort?: number;
    /**
     * Credentials every member requires of, and presents to, the others.
     */
    routeAuth?: {
      user: string;
      password: Secret;
    };
    /**
     * TLS on the routes between members, from an operator CA: every member presents its own certificate and key (the same paths on every host, inside the controller's allowed roots; the certificate must name the member's route address, as an IP or DNS subjectAltName) and accepts only peers whose certificate chains to caFile. A running cluster is switched to or from route TLS by a restart of every member at once, which natsfleet refuses: create the cluster with it.
     */
    tls?: {
      enabled?: boolean;
      /**
       * Each member's route certificate chain (PEM) on its host.
       */
      certFile?: string;
      /**
       * Its private key (PEM) on the host.
       */
      keyFile?: string;
      /**
       * The CA (PEM) every member's route certificate must chain to.
       */
      caFile?: string;
    };
    /**
     * A user of NATS's system account, which natsfleet uses to remove a former member from the JetStream meta group (a removed server otherwise counts against quorum). NATS refuses a system account beside a client token or a single user, so the members' client auth must be a user and a password (rendered as a users list).
     */
    systemAccount?: {
      user: string;
      password: Secret;
    };
    /**
     * How changes that need a restart are rolled over the members: followers first, the JetStream meta leader last, each member only when the rest of the cluster can lose it.
     */
    rollout?: {
      /**
       * Members restarted at once; never more than the cluster can lose and keep its quorum.
       */
      maxUnavailable?: number;
      /**
       * How long a restarted member must stay healthy and current before the next one.
       */
      settle?: string;
      /**
       * How long a member may take to become healthy and current; past it, it is rolled back and the rollout halts.
       */
      timeout?: string;
    };
    /**
     * NATS settings every member inherits (an image bump is one line here). A field set both here and in a member's manifest is an error.
     */
    nats?: {
      /**
       * The NATS server image. Required here unless the host's NatsCluster sets it (spec.nats.image there).
       */
      image?: string;
      /**
       * Always: try a pull before every start; IfNotPresent: pull only when the image is missing; Never. Default: Always for ':latest' or untagged images, otherwise IfNotPresent (the Kubernetes rule).
       */
      imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
      auth?: Auth;
      jetstream?: {
        enabled?: boolean;
        maxMemory?: string | number;
        maxFile?: string | number;
      };
      maxPayload?: string | number;
      maxConnections?: number;
      lameDuck?: {
        duration?: string;
        gracePeriod?: string;
      };
      logging?: {
        debug?: boolean;
        trace?: boolean;
        logtime?: boolean;
      };
    };
  };
}
export interface Metadata {
  /**
   * DNS label, unique in the repository and equal to the file name (hosts/<name>.yaml).
   */
  name: string;
  /**
   * Free-form string labels, used to select hosts.
   */
  labels?: {
    [k: string]: string;
  };
}
/**
 * A secret is never written in Git: {env: NAME} reads the controller's environment, {file: PATH} a file on the controller machine, {bcrypt: HASH} is a bcrypt hash that NATS verifies.
 */
export interface Secret {
  env?: string;
  file?: string;
  bcrypt?: string;
}
/**
 * Client authorization: a token, or a user and a password (NATS refuses both). Without it the server is open, and validate warns.
 */
export interface Auth {
  token?: Secret;
  user?: string;
  password?: Secret;
}
