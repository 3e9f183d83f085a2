// Owns the controller's HTTP endpoint: GET /healthz, GET /metrics (Prometheus), and POST /webhook
// (GitHub push and pull_request events, X-Hub-Signature-256 verified) which triggers a poll at once.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface HttpOptions {
  host: string;
  port: number;
  metrics: Metrics;
  webhookSecret?: string;
  trigger: (event: string) => void;
  healthy: () => boolean;
}

export function verifySignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

export function startHttp(o: HttpOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 5 * 1024 * 1024) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const send = (code: number, body: string, type = 'application/json') => {
        res.writeHead(code, { 'content-type': type });
        res.end(body);
      };
      if (req.method === 'GET' && req.url === '/healthz')
        return o.healthy() ? send(200, '{"status":"ok"}') : send(503, '{"status":"unavailable"}');
      if (req.method === 'GET' && req.url === '/metrics')
        return send(200, o.metrics.render(), 'text/plain; version=0.0.4');
      if (req.method === 'POST' && req.url === '/webhook') {
        if (!o.webhookSecret) return send(404, '{"error":"webhook not configured"}');
        const body = Buffer.concat(chunks);
        if (!verifySignature(o.webhookSecret, body, req.headers['x-hub-signature-256'] as string | undefined))
          return send(401, '{"error":"bad signature"}');
        const event = String(req.headers['x-github-event'] ?? '');
        if (event === 'push' || event === 'pull_request') o.trigger(event);
        return send(202, '{"status":"accepted"}');
      }
      send(404, '{"error":"not found"}');
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve(server));
  });
}
