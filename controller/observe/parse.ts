// Owns parsing the observe script's output into HostFacts. Pure: fixture text in, facts out.
import { createHash } from 'node:crypto';
import type { DesiredHost } from '../render/artifact.js';
import type { ContainerFact, FileFact, HostFacts, PortFact, UnitFact } from './facts.js';
import { MARK } from './script.js';

function sections(output: string): { name: string; arg: string; body: string[] }[] {
  const out: { name: string; arg: string; body: string[] }[] = [];
  for (const line of output.split('\n')) {
    if (line.startsWith(`${MARK} `)) {
      const rest = line.slice(MARK.length + 1);
      const sp = rest.indexOf(' ');
      out.push({ name: sp < 0 ? rest : rest.slice(0, sp), arg: sp < 0 ? '' : rest.slice(sp + 1), body: [] });
    } else if (out.length > 0) {
      out[out.length - 1].body.push(line);
    }
  }
  return out;
}

const json = <T>(text: string): T | undefined => {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
};

function parseContainer(body: string[]): ContainerFact {
  const line = body.join(' ').trim();
  if (!line || line === 'missing') return { exists: false };
  const [id, imageId, running, startedAt, image] = line.split(' ');
  return { exists: true, id, imageId, running: running === 'true', startedAt, image };
}

function parseFile(body: string[]): FileFact {
  if (body[0] === undefined || body[0].trim() === 'missing') return { exists: false };
  const [mode, owner, group] = body[0].trim().split(' ');
  const content = Buffer.from((body[1] ?? '').trim(), 'base64');
  return {
    exists: true,
    mode: mode.padStart(4, '0'),
    owner,
    group,
    content: content.toString('utf8'),
    sha256: createHash('sha256').update(content).digest('hex'),
  };
}

export class ObserveError extends Error {}

export function parseFacts(output: string, d: DesiredHost): HostFacts {
  const secs = sections(output);
  if (!secs.some((s) => s.name === 'end')) throw new ObserveError('observe output is incomplete (no end marker)');
  const get = (name: string) => secs.find((s) => s.name === name)?.body ?? [];
  const text = (name: string) => get(name).join('\n').trim();

  const os = { id: '', versionId: '', pretty: '' };
  for (const l of get('os')) {
    const m = /^(ID|VERSION_ID|PRETTY_NAME)="?([^"]*)"?$/.exec(l);
    if (m) os[m[1] === 'ID' ? 'id' : m[1] === 'VERSION_ID' ? 'versionId' : 'pretty'] = m[2];
  }
  const dockerLines = get('docker').map((l) => l.trim()).filter(Boolean);
  const docker = {
    installed: dockerLines[0] === 'installed',
    running: dockerLines[0] === 'installed' && dockerLines[1] !== undefined && dockerLines[1] !== 'not-running',
    version: dockerLines[0] === 'installed' && dockerLines[1] !== 'not-running' ? dockerLines[1] : undefined,
  };
  const compose = get('compose').map((l) => l.trim());

  const files: Record<string, FileFact> = {};
  const dirs: HostFacts['dirs'] = {};
  for (const s of secs) {
    if (s.name === 'file') files[s.arg] = parseFile(s.body);
    if (s.name === 'dir') {
      const l = s.body.join('').trim();
      if (l === 'missing' || !l) dirs[s.arg] = { exists: false };
      else {
        const [mode, owner, group] = l.split(' ');
        dirs[s.arg] = { exists: true, mode: mode.padStart(4, '0'), owner, group };
      }
    }
  }

  const unitProps = Object.fromEntries(get('unit').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const unit: UnitFact = {
    loadState: unitProps.LoadState ?? 'unknown',
    activeState: unitProps.ActiveState ?? 'unknown',
    subState: unitProps.SubState ?? 'unknown',
    unitFileState: unitProps.UnitFileState ?? '',
    needDaemonReload: unitProps.NeedDaemonReload === 'yes',
  };

  const wanted = (secs.find((s) => s.name === 'ports-wanted')?.arg ?? '').split(',').filter(Boolean).map(Number);
  const listeners = get('ports').map((l) => l.trim()).filter(Boolean);
  const ports: PortFact[] = wanted.map((port) => {
    const hit = listeners.find((l) => new RegExp(`:${port}$`).test(l.split(' ')[0]));
    return { port, held: Boolean(hit), process: hit ? /users:\(\("([^"]+)"/.exec(hit)?.[1] ?? 'unknown' : undefined };
  });

  const healthLines = get('healthz').filter((l, i, a) => l.trim() !== '' || i < a.length - 1);
  const hzCode = Number((healthLines.pop() ?? '').trim());
  const image = text('image');
  return {
    os,
    uid: Number(text('uid')),
    docker,
    compose: compose.includes('plugin') ? 'plugin' : compose.includes('standalone') ? 'standalone' : 'none',
    curl: text('curl') === 'yes',
    files,
    dirs,
    unit,
    container: parseContainer(get('container')),
    imageId: image && image !== 'missing' ? image : undefined,
    proxy: { container: parseContainer(get('proxy-container')), volume: text('proxy-volume') === 'yes' },
    ports,
    healthz: hzCode > 0 ? { status: hzCode, body: healthLines.join('\n').trim() } : undefined,
    varz: json(text('varz')),
    jsz: json(text('jsz')),
    record: json(text('record')),
    pending: json(text('pending')),
    lock: json(text('lock')),
  };
}
