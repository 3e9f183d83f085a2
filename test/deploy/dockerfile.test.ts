// deploy/Dockerfile, checked for what can be checked without building it (the base images cannot be pulled
// here): two stages, a runtime stage of only production dependencies and built files, an unprivileged user,
// tini as PID 1, the programs the controller spawns, and a health check against /healthz.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fixtures.js';

interface Instruction {
  op: string;
  args: string;
}

/** The instructions of a Dockerfile: comments dropped, continuation lines joined. */
function instructions(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim()) logical.push(current.trim());
    current = '';
  }
  return logical.map((l) => {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    return { op: m[1].toUpperCase(), args: m[2] };
  });
}

const all = instructions(readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8'));
const stages: Instruction[][] = [];
for (const i of all) {
  if (i.op === 'FROM') stages.push([]);
  stages.at(-1)?.push(i);
}
const build = stages[0];
const runtime = stages.at(-1)!;
const of = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op);
const copies = (stage: Instruction[]) =>
  of(stage, 'COPY').map((i) => {
    const words = i.args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const paths = words.filter((w) => !w.startsWith('--'));
    return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });

describe('deploy/Dockerfile', () => {
  it('has a build stage and a runtime stage, both on Node 22 (bookworm-slim)', () => {
    expect(stages).toHaveLength(2);
    expect(build[0].args).toBe('node:22-bookworm-slim AS build');
    expect(runtime[0].args).toBe('node:22-bookworm-slim');
  });

  it('builds with the dev dependencies, then prunes them', () => {
    const run = of(build, 'RUN')
      .map((i) => i.args)
      .join('\n');
    expect(run).toMatch(/npm ci\b/);
    expect(run).toMatch(/tsc -p tsconfig\.build\.json/);
    expect(run).toMatch(/npm prune --omit=dev/);
  });

  it('copies only production node_modules, dist/, package.json, bin/ and schemas/ into the runtime stage', () => {
    const c = copies(runtime);
    expect(c.filter((x) => x.from === 'build').flatMap((x) => x.sources)).toEqual([
      '/src/package.json',
      '/src/node_modules',
      '/src/dist',
    ]);
    expect(c.filter((x) => x.from === undefined).flatMap((x) => x.sources)).toEqual(['bin', 'schemas']);
    // Nothing installs or compiles in the runtime stage, and nothing copies the whole context.
    const run = of(runtime, 'RUN')
      .map((i) => i.args)
      .join('\n');
    expect(run).not.toMatch(/npm (ci|install)|tsc/);
    expect(all.filter((i) => i.op === 'COPY' && /(^|\s)\.\s/.test(i.args))).toEqual([]);
    expect(all.filter((i) => i.op === 'ADD')).toEqual([]);
  });

  it('copies from the context only files that exist and that its .dockerignore lets through', () => {
    const ignore = readFileSync(join(ROOT, 'deploy/Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    for (const src of stages.flatMap(copies).flatMap((c) => (c.from ? [] : c.sources))) {
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(ignore.some((l) => l === `!${src}` || l === `!${src}/`)).toBe(true);
    }
  });

  it('runs as an unprivileged user', () => {
    const users = of(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.args.split(':')[0];
    expect(['root', '0', '']).not.toContain(user);
    // Numeric, so that Kubernetes' runAsNonRoot can verify it; created with that uid.
    expect(user).toMatch(/^\d+$/);
    expect(of(runtime, 'RUN').some((i) => i.args.includes(`--uid ${user}`))).toBe(true);
  });

  it('runs under tini from Debian, which forwards signals and reaps the git and ssh children', () => {
    const entry = JSON.parse(of(runtime, 'ENTRYPOINT').at(-1)!.args) as string[];
    expect(entry.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(entry.slice(2)).toEqual(['node', '/opt/natsfleet/bin/natsfleet.js']);
    expect(of(runtime, 'WORKDIR').at(-1)!.args).toBe('/opt/natsfleet');
    const install = of(runtime, 'RUN').find((i) => i.args.includes('apt-get install'))!.args;
    for (const p of ['tini', 'git', 'openssh-client', 'ca-certificates'])
      expect(install).toMatch(new RegExp(`\\s${p}\\b`));
    expect(install).toContain('--no-install-recommends');
    expect(install).toContain('rm -rf /var/lib/apt/lists/*');
    expect(JSON.parse(of(runtime, 'CMD').at(-1)!.args)).toEqual([
      'controller',
      '--config',
      '/etc/natsfleet/natsfleet.yaml',
    ]);
  });

  it('checks its health on /healthz at the port it listens on', () => {
    const env = of(runtime, 'ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toContain('NATSFLEET_LISTEN=0.0.0.0:9420');
    expect(env).toContain('NODE_OPTIONS=--max-semi-space-size=32');
    const health = of(runtime, 'HEALTHCHECK').at(-1)!.args;
    expect(health).toMatch(/--interval=\d+s/);
    expect(health).toContain('/healthz');
    expect(health).toContain('process.env.NATSFLEET_LISTEN');
    expect(of(runtime, 'EXPOSE').at(-1)!.args).toBe('9420');
    expect(of(runtime, 'VOLUME').at(-1)!.args).toBe('/var/lib/natsfleet-controller');
  });
});
