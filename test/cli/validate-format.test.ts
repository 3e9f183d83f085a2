// `natsfleet validate --format github`: one GitHub workflow command per problem (::error / ::warning on its
// file and line, titled by its field), escaped by GitHub's rules, so that the validate workflow of a hosts
// repository annotates the manifest lines; the text format is unchanged by default.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { githubAnnotation, githubCommand } from '../../controller/cli/validate.js';
import { cli } from '../helpers/cli.js';
import { ROOT } from '../helpers/fixtures.js';

const good = readFileSync(join(ROOT, 'hosts/nats-us-1.yaml'), 'utf8');

function badDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nf-validate-gh-'));
  writeFileSync(join(dir, 'nats-us-1.yaml'), good);
  writeFileSync(
    join(dir, 'bad.yaml'),
    good
      .replace('name: nats-us-1', 'name: bad')
      .replace('host: 203.0.113.20', 'host: 203.0.113.21')
      .replace('image: nats:2.10.22-alpine', 'image: "nats; reboot"'),
  );
  // A warning, no error: a host without an auth block.
  writeFileSync(
    join(dir, 'open.yaml'),
    good
      .replace('name: nats-us-1', 'name: open')
      .replace('host: 203.0.113.20', 'host: 203.0.113.22')
      .replace(/ {4}auth:\n(?: {6}.*\n)+/, ''),
  );
  return dir;
}

describe('GitHub workflow commands', () => {
  it('escape %, CR and LF in the message, and also : and , in properties', () => {
    expect(githubCommand('error', '100% bad\r\nnext', { file: 'a:b,c.yaml', line: 3, title: 'x%y' })).toBe(
      '::error file=a%3Ab%2Cc.yaml,line=3,title=x%25y::100%25 bad%0D%0Anext',
    );
  });

  it('leave out properties that are not known', () => {
    expect(githubCommand('warning', 'm', { file: 'f.yaml', line: undefined, title: '' })).toBe(
      '::warning file=f.yaml::m',
    );
    expect(githubCommand('error', 'm')).toBe('::error::m');
  });

  it('turn a problem into an annotation on its file and line, titled by its field', () => {
    expect(
      githubAnnotation({
        file: 'hosts/a.yaml',
        line: 12,
        path: 'spec.nats.image',
        severity: 'error',
        message: 'must be a Docker image reference',
      }),
    ).toBe(
      '::error file=hosts/a.yaml,line=12,title=spec.nats.image::spec.nats.image: must be a Docker image reference',
    );
    expect(githubAnnotation({ file: 'hosts/a.yaml', path: '', severity: 'warning', message: 'w' })).toBe(
      '::warning file=hosts/a.yaml::w',
    );
  });
});

describe('natsfleet validate --format github', () => {
  it('prints one workflow command per problem, then the summary, and exits 1 on an error', async () => {
    const dir = badDir();
    const r = await cli('validate', dir, '--format', 'github');
    expect(r.code).toBe(1);
    expect(r.err).toBe('');
    const lines = r.out.split('\n');
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^::error file=${dir}/bad\\.yaml,line=\\d+,title=spec\\.nats\\.image::spec\\.nats\\.image: must be a Docker image reference`,
        ),
      ),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^::warning file=${dir}/open\\.yaml,line=\\d+,title=spec\\.nats\\.auth::spec\\.nats\\.auth: no auth`,
        ),
      ),
    );
    expect(lines.at(-1)).toBe('1 error(s), 1 warning(s): 1 of 3 manifest(s) invalid');
    // Every line but the summary is a workflow command: nothing else GitHub could misread.
    expect(lines.slice(0, -1).every((l) => /^::(error|warning) /.test(l))).toBe(true);
  });

  it('points the line at the offending field', async () => {
    const dir = badDir();
    const r = await cli('validate', dir, '--format', 'github');
    const line = Number(/bad\.yaml,line=(\d+),title=spec\.nats\.image/.exec(r.out)![1]);
    expect(readFileSync(join(dir, 'bad.yaml'), 'utf8').split('\n')[line - 1]).toContain('image: "nats; reboot"');
  });

  it('exits 0 on valid manifests (warnings allowed)', async () => {
    const r = await cli('validate', join(ROOT, 'hosts'), '--format', 'github');
    expect(r.out).not.toContain('::error');
    expect(r.code).toBe(0);
  });

  it('reports an empty directory as an annotation too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-validate-gh-empty-'));
    const r = await cli('validate', dir, '--format', 'github');
    expect(r.out).toBe(`::error title=natsfleet validate::${dir}: no manifests (*.yaml) found`);
    expect(r.code).toBe(1);
  });

  it('keeps the text format by default and with --format text', async () => {
    const dir = badDir();
    const byDefault = await cli('validate', dir);
    const text = await cli('validate', dir, '--format', 'text');
    expect(text.out).toBe(byDefault.out);
    expect(text.out).toMatch(new RegExp(`^${dir}/bad\\.yaml:\\d+: error: spec\\.nats\\.image: `, 'm'));
    expect(text.out).not.toContain('::');
  });

  it('refuses an unknown format: a usage error on stderr, exit 1', async () => {
    const r = await cli('validate', join(ROOT, 'hosts'), '--format', 'xml');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(
      "error: option '--format <format>' argument 'xml' is invalid. Allowed choices are text, github.",
    );
  });
});
