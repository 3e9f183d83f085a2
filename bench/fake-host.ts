// Benchmark support: the observe output of a converged host, made from output captured on a real
// sandbox host (test/fixtures/observe/converged.txt) with the files, directories, /varz and record
// rewritten for another host's desired state. Used to simulate 10,000 converged hosts.
import { sha256 } from '../controller/util/hash.js';
import { readFileSync } from 'node:fs';
import { dump, load } from 'js-yaml';
import type { DesiredHost } from '../controller/render/artifact.js';
import type { NatsHost } from '../controller/manifest/natshost.gen.js';
import { MARK } from '../controller/observe/protocol.js';

export function convergedOutput(fixture: string, d: DesiredHost): string {
  const sections: { head: string; body: string[] }[] = [];
  for (const line of fixture.split('\n')) {
    if (line.startsWith(`${MARK} `)) sections.push({ head: line, body: [] });
    else sections.at(-1)?.body.push(line);
  }
  const out: string[] = [];
  const record = {
    revision: 'bench',
    appliedAt: '2026-01-01T00:00:00.000Z',
    by: 'bench',
    image: d.nats.image,
    files: Object.fromEntries(d.files.map((f) => [f.path, { sha256: sha256(f.content), mode: f.mode }])),
  };
  for (const s of sections) {
    const [, name] = s.head.split(' ');
    if (name === 'file' || name === 'dir') continue; // regenerated below, in place of the first one
    if (name === 'unit') {
      for (const f of d.files)
        out.push(
          `${MARK} file ${f.path}`,
          `${Number(f.mode).toString()} root root ${Buffer.byteLength(f.content)}`,
          sha256(f.content),
        );
      for (const dir of d.dirs) out.push(`${MARK} dir ${dir.path}`, '755 root root');
    }
    out.push(s.head);
    if (name === 'varz')
      out.push(
        JSON.stringify({ server_name: d.nats.serverName, version: '2.9.10', config_load_time: '2026-01-01T00:00:00Z' }),
        '',
      );
    else if (name === 'record') out.push(JSON.stringify(record), '');
    else out.push(...s.body);
  }
  return out.join('\n');
}

const template = load(
  readFileSync(new URL('../test/fixtures/observe/converged.manifest.yaml', import.meta.url), 'utf8'),
) as NatsHost;

/** The name of simulated host number `i` ("sim-00042"; its manifest is hosts/sim-00042.yaml). */
export const simName = (i: number) => `sim-${String(i).padStart(5, '0')}`;

/** The manifest of simulated host number `i` (a copy of the captured host under another name and port). */
export function simManifest(i: number, port: number, hostKey: string): string {
  const doc = structuredClone(template);
  doc.metadata.name = simName(i);
  doc.spec.ssh = { host: '127.0.0.1', port, user: 'root', hostKey };
  doc.spec.proxy!.domain = `${doc.metadata.name}.sandbox.test`;
  return dump(doc);
}
