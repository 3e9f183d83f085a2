// Shell completion generated from the command tree: real bash completes commands, subcommands and
// flags, and falls back to file names; the script passes shellcheck.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../controller/cli/main.js';

const file = join(mkdtempSync(join(tmpdir(), 'nf-completion-')), 'natsfleet.bash');

beforeAll(async () => {
  const out: string[] = [];
  expect(await main(['node', 'natsfleet', 'completion', 'bash'], (l) => out.push(l))).toBe(0);
  writeFileSync(file, `${out.join('\n')}\n`);
});

/** What bash offers after `words` (the last one is being typed). */
const complete = (...words: string[]) =>
  execFileSync(
    'bash',
    [
      '-c',
      `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _natsfleet; printf '%s\\n' "\${COMPREPLY[@]}"`,
      file,
      'natsfleet',
      ...words,
    ],
    { encoding: 'utf8', cwd: join(import.meta.dirname, '../..') },
  )
    .split('\n')
    .filter(Boolean);

describe('bash completion', () => {
  it('passes shellcheck', () => {
    expect(() => execFileSync('shellcheck', ['-s', 'bash', file])).not.toThrow();
  });

  it.each([
    [['ho'], ['hostkey']],
    [['hostkey', ''], ['scan']],
    [
      ['plan', '--ho'],
      ['--hosts', '--host'],
    ],
    [['apply', '-'], expect.arrayContaining(['-y', '--yes', '-l', '--selector', '-o', '--output'])],
    [
      ['sandbox', 'up', '--c'],
      ['--count', '--cluster'],
    ],
    [['validate', 'hos'], ['hosts']],
    [['import', '--na'], ['--name']],
  ])('natsfleet %j', (words, want) => {
    expect(complete(...words)).toEqual(want);
  });
});
