// The apply history on a host: the line each apply appends (run in a real shell, with natsfleet's state
// directory moved to a temporary one), bounded to the last 100, never partial (a write cut short leaves
// the previous history as it was), written by the record step of an applied apply and by the rollback of
// a failed one; and read back newest first.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  appendHistory,
  finalizeScript,
  LOCK_LOST,
  stagedPath,
  historyScript,
  rollbackScript,
  strict,
} from '../../controller/apply/commands.js';
import {
  cliActor,
  HISTORY_LIMIT,
  historyEntry,
  parseHistory,
  recordedInHistory,
  type HistoryEntry,
} from '../../controller/apply/history.js';
import { HISTORY_PATH, STATE_DIR } from '../../controller/observe/host-layout.js';
import { remoteScript } from '../../controller/shell/quote.js';
import { packageVersion } from '../../controller/package-root.js';
import { desiredFrom } from '../helpers/observed.js';

const TOKEN = 'f00dfeedf00dfeed1234';
const d = desiredFrom();

function run(script: string, state: string, path?: string) {
  const env = { ...process.env, PATH: `${path ? `${path}:` : ''}${process.env.PATH}` };
  return spawnSync('sh', ['-s'], { input: remoteScript(script.replaceAll(STATE_DIR, state)), encoding: 'utf8', env });
}

function fakeBin(cmds: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nf-fakebin-'));
  for (const [name, body] of Object.entries(cmds)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

const stateDir = () => join(mkdtempSync(join(tmpdir(), 'nf-history-')), 'state');
/** A state directory whose apply lock is held by TOKEN (what finalize and rollback check first). */
const lockedStateDir = () => {
  const state = stateDir();
  mkdirSync(join(state, 'lock'), { recursive: true });
  writeFileSync(join(state, 'lock', 'info'), JSON.stringify({ token: TOKEN }));
  return state;
};
const entry = (n: number, over: Partial<HistoryEntry> = {}): HistoryEntry => ({
  ...historyEntry({ revision: `rev-${n}`, outcome: 'applied', steps: ['reload'], by: 'controller' }),
  ...over,
});
const historyOf = (state: string) => readFileSync(join(state, 'history.jsonl'), 'utf8');
const append = (e: HistoryEntry, state: string, path?: string) =>
  run(strict(`mkdir -p ${state}`, ...appendHistory(e, TOKEN)), state, path);

describe('the history line', () => {
  it('says when, which revision, the outcome, the steps, who and which natsfleet; never an error text', () => {
    const e = historyEntry({
      revision: 'abc',
      outcome: 'rolled-back',
      steps: ['test-config', 'restart'],
      reason: 'verify-failed',
      by: 'alice@laptop',
      durationMs: 1234,
      at: new Date('2026-11-27T01:02:03.456Z'),
    });
    expect(e).toEqual({
      at: '2026-11-27T01:02:03.456Z',
      revision: 'abc',
      outcome: 'rolled-back',
      steps: ['test-config', 'restart'],
      reason: 'verify-failed',
      by: 'alice@laptop',
      version: packageVersion(),
      durationMs: 1234,
    });
    expect(Object.keys(e)).not.toContain('error');
  });

  it.each([
    ['applied', true],
    ['rolled-back', true],
    ['unchanged', false],
    ['blocked', false],
    ['failed', false],
  ] as const)('an apply %s is recorded: %s', (outcome, recorded) => {
    expect(recordedInHistory(outcome)).toBe(recorded);
  });

  it('a CLI apply is by user@machine', () => {
    expect(cliActor()).toMatch(/^[^@\s]+@[^@\s]+$/);
  });
});

describe('reading the history back', () => {
  it('newest first; lines that are not entries are skipped; old lines without version or author still read', () => {
    const text = [
      JSON.stringify(entry(1)),
      'garbage',
      '{"at":"t","revision":"r2","outcome":"applied","steps":[]}',
      '{"not":"an entry"}',
      JSON.stringify(entry(3)),
      '',
    ].join('\n');
    expect(parseHistory(text).map((e) => [e.revision, e.by, e.version])).toEqual([
      ['rev-3', 'controller', packageVersion()],
      ['r2', '?', '?'],
      ['rev-1', 'controller', packageVersion()],
    ]);
    expect(parseHistory('')).toEqual([]);
  });

  it('prints the file when there is one, nothing (and exit 0) when there is none', () => {
    const state = stateDir();
    const none = run(historyScript(), state);
    expect([none.status, none.stdout]).toEqual([0, '']);
    expect(append(entry(1), state).status).toBe(0);
    const some = run(historyScript(), state);
    expect(parseHistory(some.stdout).map((e) => e.revision)).toEqual(['rev-1']);
  });
});

describe('appending to the history (real shell)', () => {
  it('appends one line per apply, private to root, nothing staged left behind', () => {
    const state = stateDir();
    for (const n of [1, 2, 3]) expect(append(entry(n), state).status).toBe(0);
    expect(
      historyOf(state)
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).revision),
    ).toEqual(['rev-1', 'rev-2', 'rev-3']);
    expect(readdirSync(state)).toEqual(['history.jsonl']);
    expect(spawnSync('stat', ['-c', '%a', join(state, 'history.jsonl')], { encoding: 'utf8' }).stdout.trim()).toBe(
      '600',
    );
  });

  it(`keeps the last ${HISTORY_LIMIT} lines, and drops a line that is not one JSON object`, () => {
    const state = stateDir();
    run(`mkdir -p ${state}`, state);
    const old = Array.from({ length: 120 }, (_, i) => JSON.stringify(entry(i)));
    writeFileSync(
      join(state, 'history.jsonl'),
      `${old.slice(0, 110).join('\n')}\n{"cut short\n${old.slice(110).join('\n')}`,
    );
    expect(append(entry(999), state).status).toBe(0);
    const lines = historyOf(state).trimEnd().split('\n');
    expect(lines).toHaveLength(HISTORY_LIMIT);
    expect(lines.map((l) => JSON.parse(l).revision)).toEqual([
      ...Array.from({ length: 99 }, (_, i) => `rev-${i + 21}`),
      'rev-999',
    ]);
  });

  it('the earlier lines cut short while copied (a full disk): refused, the history stays as it was', () => {
    const state = stateDir();
    expect(append(entry(1), state).status).toBe(0);
    expect(append(entry(2), state).status).toBe(0);
    const before = historyOf(state);
    // The first awk (the copy) loses its end; the second (the check) reads the file whole.
    const bin = fakeBin({
      awk: `if [ ! -e "$0.done" ]; then : > "$0.done"; /usr/bin/awk "$@" | head -c 20; else exec /usr/bin/awk "$@"; fi`,
    });
    const r = append(entry(3), state, bin);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('the earlier lines were not copied whole');
    expect(historyOf(state)).toBe(before);
  });

  it('the new line cut short when flushed: refused, the history stays as it was', () => {
    const state = stateDir();
    expect(append(entry(1), state).status).toBe(0);
    const before = historyOf(state);
    const bin = fakeBin({ sync: 'truncate -s -7 "$1"' });
    const r = append(entry(2), state, bin);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('the new line was not written whole');
    expect(historyOf(state)).toBe(before);
  });

  it('the record step of an apply appends its line with the record', () => {
    const state = lockedStateDir();
    const record = { revision: 'rev-7', appliedAt: 't', by: 'b', image: 'nats:2.10', files: {} };
    const r = run(finalizeScript(record, TOKEN, entry(7)), state);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(state, 'applied.json'), 'utf8')).revision).toBe('rev-7');
    expect(parseHistory(historyOf(state))[0]).toMatchObject({ revision: 'rev-7', outcome: 'applied' });
    // Without an entry (the record of an older caller), no history is written.
    const other = lockedStateDir();
    expect(run(finalizeScript(record, TOKEN), other).status).toBe(0);
    expect(existsSync(join(other, 'history.jsonl'))).toBe(false);
  });

  it('a rollback records the rolled-back apply; a history it cannot write does not fail the rollback', () => {
    const bin = fakeBin({ systemctl: 'exit 0' });
    const rolledBack = entry(8, { outcome: 'rolled-back', reason: 'verify-failed' });
    const script = rollbackScript(d, {
      install: [],
      composeKind: 'plugin',
      proxyTouched: false,
      token: TOKEN,
      history: rolledBack,
    });
    const state = lockedStateDir();
    const r = run(script, state, bin);
    expect(r.status, r.stderr).toBe(0);
    expect(parseHistory(historyOf(state))[0]).toMatchObject({ outcome: 'rolled-back', reason: 'verify-failed' });
    // The history's staging place is taken by a directory: it cannot be written, the rollback still is.
    const blocked = lockedStateDir();
    mkdirSync(stagedPath(join(blocked, 'history.jsonl'), TOKEN));
    const again = run(script, blocked, bin);
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('the apply history was not written');
  });

  it('finalize and rollback change nothing once the apply lock is another apply (the fence)', () => {
    const record = { revision: 'rev-7', appliedAt: 't', by: 'b', image: 'nats:2.10', files: {} };
    const state = lockedStateDir();
    writeFileSync(join(state, 'lock', 'info'), JSON.stringify({ token: 'another-apply-token' }));
    const fin = run(finalizeScript(record, TOKEN, entry(7)), state);
    expect(fin.status).toBe(LOCK_LOST);
    expect(fin.stderr).toContain('the apply lock is no longer ours: nothing changed');
    expect(existsSync(join(state, 'applied.json'))).toBe(false);
    const rb = run(
      rollbackScript(d, { install: [], composeKind: 'plugin', proxyTouched: false, token: TOKEN, history: entry(8) }),
      state,
      fakeBin({ systemctl: 'echo restarted >> "$0.log"' }),
    );
    expect(rb.status).toBe(LOCK_LOST);
    expect(existsSync(join(state, 'history.jsonl'))).toBe(false);
  });

  it('the history path is in natsfleet state directory on the host', () => {
    expect(HISTORY_PATH).toBe(`${STATE_DIR}/history.jsonl`);
  });
});
