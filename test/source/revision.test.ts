// The revision a local hosts directory is at: the commit's first 12 hex digits, "-dirty" with any change
// under it (tracked or untracked, not elsewhere in the repository), "local" outside Git or before the first
// commit. Pure parsing in a table; then a real repository.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { localRevision, revisionOf } from '../../controller/source/revision.js';

const OID = '390cc02d8277035afaacd888bc739f9751b89124';

describe('revisionOf (git status --porcelain=v2 --branch)', () => {
  it.each([
    ['a clean checkout', `# branch.oid ${OID}\n# branch.head main\n`, '390cc02d8277'],
    ['a detached head', `# branch.oid ${OID}\n# branch.head (detached)\n`, '390cc02d8277'],
    [
      'a changed tracked file',
      `# branch.oid ${OID}\n# branch.head main\n1 .M N... 100644 100644 100644 a a f\n`,
      '390cc02d8277-dirty',
    ],
    ['an untracked file', `# branch.oid ${OID}\n# branch.head main\n? new.yaml\n`, '390cc02d8277-dirty'],
    ['no commit yet', '# branch.oid (initial)\n# branch.head main\n? a.yaml\n', 'local'],
    ['no output', '', 'local'],
  ])('%s', (_, status, want) => expect(revisionOf(status)).toBe(want));
});

describe('localRevision (a real repository)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nf-revision-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.test', ...args], {
      encoding: 'utf8',
    }).trim();

  it('names the commit, and -dirty only for changes under the directory', async () => {
    const outside = join(dir, 'elsewhere');
    mkdirSync(outside);
    expect(await localRevision(outside)).toBe('local'); // not a repository yet
    git('init', '-q');
    const hosts = join(dir, 'hosts');
    mkdirSync(hosts);
    writeFileSync(join(hosts, 'a.yaml'), 'a: 1\n');
    expect(await localRevision(hosts)).toBe('local'); // no commit
    git('add', '-A');
    git('commit', '-qm', 'first');
    const head = git('rev-parse', '--short=12', 'HEAD');
    expect(await localRevision(hosts)).toBe(head);
    writeFileSync(join(outside, 'notes.txt'), 'not a manifest\n');
    expect(await localRevision(hosts)).toBe(head);
    writeFileSync(join(hosts, 'b.yaml'), 'b: 1\n');
    expect(await localRevision(hosts)).toBe(`${head}-dirty`);
  });
});
