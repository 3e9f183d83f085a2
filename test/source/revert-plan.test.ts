// The pure parts of `natsfleet revert`: which paths are reverted, the branch, the words of the commit and
// of the pull request, the GitHub repository of a remote, and the files a failed reverse patch names.
import { describe, expect, it } from 'vitest';
import {
  conflictedFiles,
  githubRepositoryOf,
  manifestPaths,
  normalizeDir,
  otherPaths,
  revertBody,
  revertBranch,
  revertCommitMessage,
  revertTitle,
} from '../../controller/source/revert-plan.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('which paths a revert touches', () => {
  const changed = [
    'hosts/a.yaml',
    'README.md',
    'hosts/sub/b.yml',
    'hostsx/c.yaml',
    'docs/hosts/d.yaml',
    'hosts/a.yaml',
  ];
  it.each<[string, string[], string[]]>([
    ['hosts', ['hosts/a.yaml', 'hosts/sub/b.yml'], ['README.md', 'docs/hosts/d.yaml', 'hostsx/c.yaml']],
    ['./hosts/', ['hosts/a.yaml', 'hosts/sub/b.yml'], ['README.md', 'docs/hosts/d.yaml', 'hostsx/c.yaml']],
    ['docs/hosts', ['docs/hosts/d.yaml'], ['README.md', 'hosts/a.yaml', 'hosts/sub/b.yml', 'hostsx/c.yaml']],
    ['.', ['README.md', 'docs/hosts/d.yaml', 'hosts/a.yaml', 'hosts/sub/b.yml', 'hostsx/c.yaml'], []],
    ['fleet', [], ['README.md', 'docs/hosts/d.yaml', 'hosts/a.yaml', 'hosts/sub/b.yml', 'hostsx/c.yaml']],
  ])('hosts directory %s', (dir, reverted, kept) => {
    expect(manifestPaths(changed, dir)).toEqual(reverted);
    expect(otherPaths(changed, dir)).toEqual(kept);
  });

  it.each([
    ['hosts', 'hosts'],
    ['./hosts/', 'hosts'],
    ['hosts//', 'hosts'],
    ['.', ''],
    ['./', ''],
    ['a/./b/', 'a/b'],
  ])('the directory %j is %j in the repository', (dir, normal) => {
    expect(normalizeDir(dir)).toBe(normal);
  });
});

describe('names and words', () => {
  it('the branch is natsfleet/revert-<short>', () => {
    expect(revertBranch(SHA)).toBe('natsfleet/revert-0123456789ab');
  });

  it.each([
    ['bigger payloads', 'Revert 0123456789ab: bigger payloads'],
    ['  one line\nand more', 'Revert 0123456789ab: one line'],
    ['x'.repeat(300), `Revert 0123456789ab: ${'x'.repeat(197)}...`],
  ])('title of %j', (subject, title) => {
    expect(revertTitle(SHA, subject)).toBe(title);
  });

  const text = {
    sha: SHA,
    subject: 'bigger payloads',
    paths: ['hosts/a.yaml', 'hosts/b.yaml'],
    kept: ['README.md'],
    base: 'main',
    hostsDir: 'hosts',
  };

  it('the commit message names the reverted revision, the manifests, and what is kept', () => {
    expect(revertCommitMessage(text)).toBe(
      [
        'Revert 0123456789ab: bigger payloads',
        '',
        `This reverts the manifest changes of commit ${SHA}:`,
        '  hosts/a.yaml',
        '  hosts/b.yaml',
        '',
        'Its changes outside hosts/ are kept:',
        '  README.md',
        '',
        'Proposed by natsfleet revert.',
      ].join('\n'),
    );
    expect(revertCommitMessage({ ...text, kept: [] })).not.toContain('kept');
  });

  it('the body says what is reverted and that it is planned and deployed like any other pull request', () => {
    const body = revertBody(text);
    expect(body).toContain(`This reverts the manifest changes of ${SHA} (bigger payloads) on \`main\`:`);
    expect(body).toContain('- `hosts/a.yaml`\n- `hosts/b.yaml`');
    expect(body).toContain('It is planned like any other pull request');
    expect(body).toContain('merging it deploys it');
    expect(body).toContain("The revision's changes outside `hosts/` are not reverted:\n\n- `README.md`");
    expect(revertBody({ ...text, kept: [] })).not.toContain('not reverted');
    const many = revertBody({ ...text, paths: Array.from({ length: 60 }, (_, i) => `hosts/h${i}.yaml`) });
    expect(many).toContain('- ... and 10 more');
  });
});

describe('the GitHub repository of a remote', () => {
  it.each([
    ['https://github.com/acme/nats-hosts.git', 'acme/nats-hosts'],
    ['https://github.com/acme/nats-hosts', 'acme/nats-hosts'],
    ['https://x-access-token:secret@github.com/acme/nats.hosts.git', 'acme/nats.hosts'],
    ['git@github.com:acme/nats-hosts.git', 'acme/nats-hosts'],
    ['ssh://git@github.com/acme/nats-hosts.git', 'acme/nats-hosts'],
    ['ssh://git@github.com:22/acme/nats-hosts', 'acme/nats-hosts'],
    ['https://gitlab.com/acme/nats-hosts.git', undefined],
    ['/srv/git/nats-hosts.git', undefined],
    ['https://github.com/acme', undefined],
    ['https://github.com.evil.example/acme/x.git', undefined],
  ])('%s -> %s', (url, repo) => {
    expect(githubRepositoryOf(url)).toBe(repo);
  });
});

describe('the files a failed reverse patch names', () => {
  const paths = ['hosts/a.yaml', 'hosts/b.yaml', 'hosts/c.yaml'];
  it.each<[string, string[]]>([
    ['error: patch failed: hosts/b.yaml:3\nerror: hosts/b.yaml: patch does not apply', ['hosts/b.yaml']],
    [
      'error: hosts/c.yaml: does not exist in index\nerror: hosts/a.yaml: already exists in index',
      ['hosts/a.yaml', 'hosts/c.yaml'],
    ],
    ["Applied patch to 'hosts/a.yaml' with conflicts.\nU hosts/a.yaml", ['hosts/a.yaml']],
    ['error: patch failed: README.md:1', []],
    ['fatal: something else', []],
  ])('%j', (output, named) => {
    expect(conflictedFiles(output, paths)).toEqual(named);
  });
});
