// Owns what TLS on the client port asks of a plan, on plain values: the first enablement in two steps
// (the certificate first, then one reload turns the port TLS-only), the served certificate against the
// file (a renewal not yet loaded, an expired or expiring certificate: drift, fixed by a reload, after a
// renewal when the file itself is due), the renewal watch, and the warning clients need. Pure.
import type { DesiredHost } from '../render/artifact.js';
import type { CertFact, HostFacts } from '../observe/facts.js';
import type { StepPlan } from './types.js';
import { imageVersion } from './nats-versions.js';

/** A certificate this close to its end is reported (certbot renews 30 days ahead). */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

/**
 * The desired state of the first step of enabling TLS with the proxy's certificate, when certbot has no
 * certificate for the domain yet and the server does not serve TLS: the same files, the NATS config
 * without its tls block. Undefined when the whole desired state can be applied at once.
 */
export function certificateFirst(d: DesiredHost, f: HostFacts): DesiredHost | undefined {
  const t = d.tls;
  if (!t || t.withheld || t.source !== 'proxy' || f.tls?.lineage || f.varz?.tls_required) return undefined;
  return {
    ...d,
    files: d.files.map((x) => (x.id === 'nats-config' ? t.withheldConfig : x)),
    tls: { ...t, withheld: true },
  };
}

const day = (iso: string) => iso.slice(0, 10);
const short = (c: CertFact) => `${c.fingerprint.slice(0, 23)}… (valid ${day(c.notBefore)} to ${day(c.notAfter)})`;

/** `expired`, `expiring` (within EXPIRY_WARNING_DAYS) or `valid`, at `now`. */
export function certState(c: CertFact, now: Date): 'expired' | 'expiring' | 'valid' | 'not-yet-valid' {
  const end = Date.parse(c.notAfter);
  if (end <= now.getTime()) return 'expired';
  if (Date.parse(c.notBefore) > now.getTime()) return 'not-yet-valid';
  return end - now.getTime() < EXPIRY_WARNING_DAYS * DAY_MS ? 'expiring' : 'valid';
}

export interface TlsPlan {
  steps: StepPlan[];
  drift: string[];
  blocked: string[];
  warnings: string[];
}

export function planTls(d: DesiredHost, f: HostFacts, now: Date): TlsPlan {
  const out: TlsPlan = { steps: [], drift: [], blocked: [], warnings: [] };
  const t = d.tls;
  if (!t || d.state !== 'present') return out;
  const v = imageVersion(d.nats.image);
  if (t.handshakeFirst && v && (v.major < 2 || (v.major === 2 && v.minor < 10)))
    out.blocked.push(
      `handshakeFirst needs NATS 2.10 or later (handshake_first); ${d.nats.image} runs ${v.major}.${v.minor}`,
    );
  const running = f.container.running === true;
  const port = d.nats.clientPort;
  const name = t.serverName ?? d.name;
  if (t.withheld) {
    out.warnings.push(
      `TLS waits for the certificate: the proxy obtains it for ${name} first, then one reload makes port ${port} ` +
        'TLS-only; from then on clients connecting without TLS are refused',
    );
    return out;
  }
  if (running && f.varz && !f.varz.tls_required)
    out.warnings.push(
      `port ${port} becomes TLS-only with this apply: clients connecting without TLS are refused ` +
        `(they connect to tls://${name}:${port})`,
    );
  const file = f.tls?.file;
  if (!file) {
    const where = t.source === 'proxy' ? `certbot's certificate for ${name} (${t.certPath})` : t.certPath;
    out.blocked.push(`${where} is missing or holds no certificate: NATS cannot be pointed at it`);
    return out;
  }
  const fileState = certState(file, now);
  const fileDue = fileState === 'expired' || fileState === 'expiring';
  const served = f.tls?.served;
  // Only a running server that already serves TLS is compared (a config change comes first otherwise).
  if (!running || !served || !('cert' in served)) {
    if (fileDue) out.drift.push(`the certificate file ${t.certPath} ${fileState} on ${day(file.notAfter)}`);
    return out;
  }
  const s = served.cert;
  const servedState = certState(s, now);
  if (servedState === 'expired' || servedState === 'expiring')
    out.drift.push(
      `NATS serves a certificate that ${servedState === 'expired' ? 'expired' : 'expires'} on ` +
        `${day(s.notAfter)}: ${short(s)}`,
    );
  if (s.fingerprint !== file.fingerprint) {
    out.drift.push(`NATS serves ${short(s)}, but the file holds ${short(file)}: the renewal was not loaded`);
  }
  if (fileDue) {
    if (t.source === 'proxy') {
      out.steps.push({
        step: 'renew-cert',
        reason: `the certificate ${fileState} on ${day(file.notAfter)}: certbot renews it`,
      });
      out.steps.push({ step: 'reload', reason: 'serve the renewed certificate' });
    } else {
      out.drift.push(
        `the certificate file ${t.certPath} ${fileState} on ${day(file.notAfter)}: ` +
          'replace it (NATS reloads when it changes)',
      );
    }
  } else if (s.fingerprint !== file.fingerprint) {
    out.steps.push({ step: 'reload', reason: 'serve the certificate the file holds' });
  }
  return out;
}
