// Owns parsing the observe script's output into HostFacts. Pure: fixture text in, facts out.
import type { DesiredHost } from '../render/artifact.js';
import type { ContainerFact, FileFact, HostFacts, PortFact, UnitFact } from './facts.js';
import { HTTP_MARK, MARK } from './script.js';

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

/** Splits a multi-URL curl answer into [status, body] per URL, in request order. */
export function httpAnswers(text: string): { status: number; body: string }[] {
  const out: { status: number; body: string }[] = [];
  let rest = text;
  const re = new RegExp(`\\n?${HTTP_MARK} (\\d{3})\\n?`);
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    out.push({ status: Number(m[1]), body: rest.slice(0, m.index) });
    rest = rest.slice(m.index + m[0].length);
  }
  return out;
}

function parseContainer(a: { status: number; body: string } | undefined): ContainerFact {
  const c =
    a?.status === 200
      ? json<{ Id: string; Image: string; State: { Running: boolean; StartedAt: string }; Config: { Image: string } }>(
          a.body,
        )
      : undefined;
  if (!c) return { exists: false };
  return {
    exists: true,
    id: c.Id,
    imageId: c.Image,
    running: c.State.Running,
    startedAt: c.State.StartedAt,
    image: c.Config.Image,
  };
}

function parseFile(body: string[]): FileFact {
  const first = body[0]?.trim();
  if (first === undefined || first === 'missing' || first === '') return { exists: false };
  if (first === 'link' || first === 'other') return { exists: true, kind: first };
  const [mode, owner, group, size] = first.split(' ');
  const hash = (body[1] ?? '').trim();
  return {
    exists: true,
    kind: 'file',
    mode: mode.padStart(4, '0'),
    owner,
    group,
    size: Number(size),
    sha256: /^[0-9a-f]{64}$/.test(hash) ? hash : undefined,
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
  const api = httpAnswers(get('docker-api').join('\n'));
  const [version, natsContainer, proxyContainer, image, volume] = api;
  const installed = text('docker') === 'installed';
  const serverVersion = version?.status === 200 ? json<{ Version: string }>(version.body)?.Version : undefined;
  const docker = { installed, running: installed && serverVersion !== undefined, version: serverVersion };
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

  const unitProps = Object.fromEntries(
    get('unit').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const unit: UnitFact = {
    loadState: unitProps.LoadState ?? 'unknown',
    activeState: unitProps.ActiveState ?? 'unknown',
    subState: unitProps.SubState ?? 'unknown',
    unitFileState: unitProps.UnitFileState ?? '',
    needDaemonReload: unitProps.NeedDaemonReload === 'yes',
  };

  const wanted = (secs.find((s) => s.name === 'ports-wanted')?.arg ?? '').split(',').filter(Boolean).map(Number);
  const listeners = get('ports')
    .map((l) => l.trim())
    .filter(Boolean);
  const ports: PortFact[] = wanted.map((port) => {
    const hit = listeners.find((l) => new RegExp(`:${port}$`).test(l.split(' ')[0]));
    return { port, held: Boolean(hit), process: hit ? (/users:\(\("([^"]+)"/.exec(hit)?.[1] ?? 'unknown') : undefined };
  });

  const [healthz, varz, jsz] = httpAnswers(get('monitor').join('\n'));
  return {
    os,
    uid: Number(text('uid')),
    docker,
    compose: compose.includes('plugin') ? 'plugin' : compose.includes('standalone') ? 'standalone' : 'none',
    curl: text('curl') === 'yes',
    files,
    dirs,
    unit,
    container: parseContainer(natsContainer),
    imageId: image?.status === 200 ? json<{ Id: string }>(image.body)?.Id : undefined,
    proxy: { container: parseContainer(proxyContainer), volume: volume?.status === 200 },
    ports,
    healthz: healthz && healthz.status > 0 ? { status: healthz.status, body: healthz.body.trim() } : undefined,
    varz: varz?.status === 200 ? json(varz.body) : undefined,
    jsz: jsz?.status === 200 ? json(jsz.body) : undefined,
    record: json(text('record')),
    ownedDirs: get('owned')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('/')),
    claims: Object.fromEntries(
      secs.filter((s) => s.name === 'claim').map((s) => [s.arg, s.body.join('').trim() === 'exists']),
    ),
    pending: json(text('pending')),
    lock: json(text('lock')),
  };
}
