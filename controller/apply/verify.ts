// Owns verifying a host after apply: /healthz 200 within a timeout, the expected server name and
// version in /varz, a reload really loaded (config_load_time moved; from 2.11 the running config's
// digest is the one `nats-server -t` printed for the new config), JetStream limits in /jsz,
// the proxy answering over HTTPS, and authentication checked with a real NATS client. What to expect
// comes from the desired state (`desired.verify`), never from the manifest. /healthz, /varz, /jsz and the
// proxy are asked by one script (one curl per try; apply appends it to the install script); then the TLS
// and authentication checks run at the same time, each on its own channel.
import type { DesiredHost } from '../render/artifact.js';
import type { SshSession } from '../transport/ssh.js';
import { certFact, firstCertificate, monitorLookup } from '../observe/fact-table.js';
import { plaintextClient, probeServedTls } from '../observe/tls-probe.js';
import type { ServedTls } from '../observe/facts.js';
import { certState } from '../plan/tls.js';
import { httpAnswers, Marked, STEP, VERIFY } from '../observe/protocol.js';
import { shQuote } from '../shell/quote.js';
import { VERIFY_ANSWERS, verifyBudgetSec, verifyScript } from './commands.js';
import { imageVersion } from '../plan/nats-versions.js';
import { openTunnel, tryConnect, type Credentials } from './nats-probe.js';

export interface VerifyInput {
  desired: DesiredHost;
  /** Plaintext credentials when natsfleet knows them (from {env}/{file}); undefined for bcrypt. */
  credentials?: Credentials;
  /** config_load_time before a reload: after it, /varz must show a later one. */
  reloadedFrom?: string;
  timeoutSec?: number;
  /** The digest `nats-server -t` printed for the new config (2.11+): /varz config_digest must equal it. */
  configDigest?: string;
}

export interface VerifyResult {
  ok: boolean;
  problems: string[];
  varz?: Record<string, unknown>;
}

/** The version an image's tag promises, as /varz must start with it (`2.10.27`, or `2.10.` for `nats:2.10`). */
function expectedVersion(image: string): string | undefined {
  const v = imageVersion(image);
  return v && (v.floating ? `${v.major}.${v.minor}.` : `${v.major}.${v.minor}.${v.patch}`);
}

/** verifyScript's input for a host: monitoring looked up on every try unless `address` is known. */
export const verifyScriptFor = (v: VerifyInput, address?: string): string =>
  verifyScript({
    lookup: monitorLookup(v.desired),
    address,
    timeoutSec: v.timeoutSec ?? 60,
    reloadedFrom: v.reloadedFrom,
    proxyDomain: v.desired.proxy?.domain,
  });

/**
 * The verification the install script ran after its steps (installScript's `verify`): what it printed after
 * the last `done` mark, and its exit code, which must be the script's last line (the steps print on stderr:
 * nothing they run can pass for either). Undefined when it did not run to its end.
 */
export function verificationIn(installStdout: string): { stdout: string; code: number } | undefined {
  const verified = new RegExp(`\\n${VERIFY}verified (\\d+)\\n?$`).exec(installStdout);
  const done = installStdout.lastIndexOf(`\n${STEP}done\n`);
  if (!verified || done < 0 || done > verified.index) return undefined;
  return { stdout: installStdout.slice(done, verified.index), code: Number(verified[1]) };
}

/**
 * Verifies the host. `answered` is what verifyScriptFor printed when it ran already (appended to the install
 * script: one round trip less), and its exit code; otherwise it runs here.
 */
export async function verifyHost(
  session: SshSession,
  v: VerifyInput,
  answered?: { stdout: string; code: number },
): Promise<VerifyResult> {
  const d = v.desired;
  const problems: string[] = [];
  const r =
    answered ?? (await session.runScript(verifyScriptFor(v), (verifyBudgetSec(v.timeoutSec ?? 60) + 10) * 1000));
  const s = new Marked(r.stdout, VERIFY);
  const answers = httpAnswers(s.text('answers'));
  const answer = (name: (typeof VERIFY_ANSWERS)[number]) => answers[VERIFY_ANSWERS.indexOf(name)];
  if (r.code !== 0 && r.code !== 3) return { ok: false, problems: [`the verification script failed (exit ${r.code})`] };
  if (r.code !== 0)
    return {
      ok: false,
      problems: [
        `/healthz did not answer 200 within ${v.timeoutSec ?? 60} s: ` +
          (answer('healthz') ? `${answer('healthz').status} ${answer('healthz').body.trim()}` : 'no answer')
            .trim()
            .slice(0, 200),
      ],
    };
  let varz: Record<string, unknown> = {};
  let jsz: { disabled?: unknown; config?: { store_dir?: unknown; max_memory?: unknown; max_storage?: unknown } } = {};
  const jszText = answer('jsz')?.body;
  try {
    varz = JSON.parse(answer('varz')?.body ?? '');
    jsz = jszText?.trim() ? JSON.parse(jszText) : {};
  } catch {
    problems.push('/varz or /jsz did not return JSON');
  }
  if (varz.server_name !== d.nats.serverName)
    problems.push(`/varz server_name is ${varz.server_name}, expected ${d.nats.serverName}`);
  const version = expectedVersion(d.nats.image);
  if (version && !String(varz.version ?? '').startsWith(version))
    problems.push(
      `/varz version is ${varz.version}, the image ${d.nats.image} should run ${version.replace(/\.$/, '')}`,
    );
  if (v.reloadedFrom && varz.config_load_time === v.reloadedFrom)
    problems.push('the reload did not take effect (config_load_time unchanged): nats-server kept its old config');
  else if (v.configDigest && typeof varz.config_digest === 'string' && varz.config_digest !== v.configDigest)
    problems.push(
      `the server runs another config than the one natsfleet tested and installed (/varz config_digest ` +
        `${varz.config_digest}, expected ${v.configDigest})`,
    );
  const js = d.verify.jetstream;
  if (js) {
    const cfg = jsz.config ?? {};
    if (!jszText?.trim() || jsz.disabled === true || !cfg.store_dir)
      problems.push('JetStream is not enabled according to /jsz');
    if (js.maxMemoryBytes !== undefined && cfg.max_memory !== js.maxMemoryBytes)
      problems.push(`/jsz max_memory is ${cfg.max_memory}, expected ${js.maxMemoryBytes}`);
    if (js.maxFileBytes !== undefined && cfg.max_storage !== js.maxFileBytes)
      problems.push(`/jsz max_storage is ${cfg.max_storage}, expected ${js.maxFileBytes}`);
  }
  if (d.proxy && s.arg('proxy') !== 'ok')
    problems.push(`the proxy does not answer ${shQuote(`https://${d.proxy.domain}/varz`)} over HTTPS`);
  // Independent checks, at once; their problems in this order.
  const checks = await Promise.all([
    d.tls && !d.tls.withheld ? verifyTls(session, d, varz) : Promise.resolve([]),
    verifyAuth(session, v),
  ]);
  problems.push(...checks.flat());
  return { ok: problems.length === 0, problems, varz };
}

/**
 * TLS on the client port: /varz says it is required, a plaintext client is refused, and the server
 * serves the certificate the file holds (a reload is asynchronous: looked at again for up to 10 s),
 * valid now and for the name clients use.
 */
async function verifyTls(session: SshSession, d: DesiredHost, varz: Record<string, unknown>): Promise<string[]> {
  const t = d.tls!;
  const problems: string[] = [];
  if (varz.tls_required !== true) problems.push('/varz does not show TLS required on the client port');
  const r = await session.runScript(firstCertificate(t.certPath), 20_000);
  const file = certFact(r.stdout);
  if (!file) return [...problems, `${t.certPath} holds no certificate`];
  let served: ServedTls = { error: 'not probed' };
  for (let i = 0; i < 20; i++) {
    served = await probeServedTls(session, d.nats.clientPort, {
      servername: t.serverName,
      handshakeFirst: t.handshakeFirst,
    });
    if ('cert' in served && served.cert.fingerprint === file.fingerprint) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  if ('plaintext' in served) problems.push(`port ${d.nats.clientPort} does not offer TLS`);
  else if ('error' in served) problems.push(`port ${d.nats.clientPort}: ${served.error}`);
  else {
    const c = served.cert;
    if (c.fingerprint !== file.fingerprint)
      problems.push(`NATS serves certificate ${c.fingerprint}, the file ${t.certPath} holds ${file.fingerprint}`);
    const state = certState(c, new Date());
    if (state === 'expired' || state === 'not-yet-valid')
      problems.push(`NATS serves a certificate valid from ${c.notBefore} to ${c.notAfter}: ${state}`);
    if (
      t.serverName &&
      !c.names.some((n) => n === t.serverName || (n.startsWith('*.') && t.serverName!.endsWith(n.slice(1))))
    )
      problems.push(
        `the certificate NATS serves does not cover ${t.serverName} (it names ${c.names.join(', ') || 'none'})`,
      );
  }
  if (!t.handshakeFirst) {
    const plain = await plaintextClient(session, d.nats.clientPort);
    if (plain === 'accepted') problems.push('a client without TLS was accepted on the client port');
    if (plain === 'unknown') problems.push('a client without TLS got no answer in time: its refusal is unchecked');
  }
  return problems;
}

async function verifyAuth(session: SshSession, v: VerifyInput): Promise<string[]> {
  const auth = v.desired.verify.auth;
  const t = v.desired.tls;
  // Over TLS when the port requires it (the certificate itself is checked by verifyTls).
  const tls =
    t && !t.withheld
      ? {
          rejectUnauthorized: false,
          ...(t.serverName ? { servername: t.serverName } : {}),
          handshakeFirst: t.handshakeFirst,
        }
      : undefined;
  const tunnel = await openTunnel(session, v.desired.nats.clientPort);
  try {
    const problems: string[] = [];
    if (t?.verifyClients && tls) {
      // Mutual TLS: natsfleet holds no client certificate, so even good credentials must be refused.
      const probe = v.credentials ?? (auth.kind === 'token' ? { token: 'natsfleet-probe' } : {});
      if ((await tryConnect(tunnel.port, probe, tls)).ok)
        problems.push('a client without a certificate was accepted although clients must present one (verify)');
      return problems;
    }
    if (auth.kind === 'none') {
      const anon = await tryConnect(tunnel.port, {}, tls);
      if (!anon.ok) problems.push(`an open server refused a client: ${anon.error}`);
      return problems;
    }
    const wrong: Credentials =
      auth.kind === 'token'
        ? { token: 'natsfleet-wrong-token' }
        : { user: auth.user, pass: 'natsfleet-wrong-password' };
    // Three clients at once, each on its own connection: none, wrong and the configured credentials.
    const [anon, bad, good] = await Promise.all([
      tryConnect(tunnel.port, {}, tls),
      tryConnect(tunnel.port, wrong, tls),
      v.credentials ? tryConnect(tunnel.port, v.credentials, tls) : Promise.resolve(undefined),
    ]);
    if (anon.ok) problems.push('a client without credentials was accepted');
    if (bad.ok) problems.push('a client with wrong credentials was accepted');
    if (good && !good.ok) problems.push(`a client with the configured credentials was refused: ${good.error}`);
    return problems;
  } finally {
    await tunnel.close();
  }
}
