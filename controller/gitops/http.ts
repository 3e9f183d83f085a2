// Owns the controller's HTTP endpoint: GET /healthz, GET /metrics (Prometheus), and POST /webhook
// (GitHub push and pull_request events, X-Hub-Signature-256 verified, redeliveries of the same
// X-GitHub-Delivery ignored) which triggers a poll at once, and the authenticated API under /api/v1/
// (api.ts: suspend, resume, sync).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';
import { authorized, handleApi, type ApiActions } from './api.js';

export interface HttpOptions {
  host: string;
  port: number;
  metrics: Metrics;
  webhookSecret?: string;
  trigger: (event: string) => void;
  healthy: () => boolean;
  /** The authenticated API under /api/v1/ (api.ts); off without it. */
  api?: ApiActions;
}

export function verifySignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

const MAX_BODY_BYTES = 5 * 1024 * 1024;

/** The last `capacity` ids seen (insertion order), in bounded memory. */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 1000) {}

  /** Records `id`; says whether it was already there. */
  seen(id: string): boolean {
    if (this.ids.has(id)) return true;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
    return false;
  }
}

export function startHttp(o: HttpOptions): Promise<Server> {
  const deliveries = new RecentIds(1000);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const send = (code: number, body: string, type = 'application/json') => {
      if (res.headersSent) return;
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    req.on('error', () => res.destroy());
    res.on('error', () => {});
    // An API request without the token is answered from its headers: its body is never read into memory.
    if ((req.url ?? '').startsWith('/api/') && o.api && !authorized(req.headers.authorization, o.api.token)) {
      res.setHeader('connection', 'close');
      res.on('finish', () => req.destroy());
      return send(401, '{"error":"missing or wrong bearer token"}');
    }
    req.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(c);
      tooLarge = true;
      chunks.length = 0;
      res.setHeader('connection', 'close');
      res.on('finish', () => req.destroy());
      send(413, '{"error":"body too large"}');
    });
    req.on('end', () => {
      if (tooLarge) return;
      if (req.method === 'GET' && req.url === '/healthz')
        return o.healthy() ? send(200, '{"status":"ok"}') : send(503, '{"status":"unavailable"}');
      if (req.method === 'GET' && req.url === '/metrics')
        return void o.metrics.render().then(
          (text) => send(200, text, o.metrics.contentType),
          () => send(500, '{"error":"metrics unavailable"}'),
        );
      if (req.method === 'POST' && req.url === '/webhook') {
        if (!o.webhookSecret) return send(404, '{"error":"webhook not configured"}');
        const body = Buffer.concat(chunks);
        if (!verifySignature(o.webhookSecret, body, req.headers['x-hub-signature-256'] as string | undefined))
          return send(401, '{"error":"bad signature"}');
        // Only after the signature: an unsigned request cannot fill the memory of deliveries.
        const delivery = String(req.headers['x-github-delivery'] ?? '').slice(0, 200);
        if (delivery && deliveries.seen(delivery))
          return send(200, JSON.stringify({ status: 'duplicate', delivery, message: 'delivery already received' }));
        const event = String(req.headers['x-github-event'] ?? '');
        if (event === 'push' || event === 'pull_request') o.trigger(event);
        return send(202, '{"status":"accepted"}');
      }
      const path = (req.url ?? '').split('?')[0];
      if (path.startsWith('/api/'))
        return void handleApi(req.method ?? '', path, req.headers.authorization, Buffer.concat(chunks), o.api).then(
          (a) => send(a.code, JSON.stringify(a.body)),
          () => send(500, '{"error":"internal error"}'),
        );
      send(404, '{"error":"not found"}');
    });
  });
  // A client that trickles its headers or body cannot hold a connection for long.
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve(server));
  });
}
