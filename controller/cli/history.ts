// Owns `natsfleet history HOST`: the host's apply history (apply/history.ts) read over SSH in one round
// trip, with the manifest's pinned host key like every other command, and printed newest first: time,
// revision, outcome, steps and who applied (or, with -o json, as the entries themselves).
import { Option, type Command } from 'commander';
import { loadManifests } from '../manifest/load.js';
import { readManifestDir } from '../manifest/read-dir.js';
import { historyScript } from '../apply/commands.js';
import { parseHistory, type HistoryEntry } from '../apply/history.js';
import { shortRev } from '../util/rev.js';
import { policyFrom, policyOptions, type PolicyFlags } from './policy-options.js';
import { SSH_KEY_HELP, sshPool } from './ssh-options.js';
import { userMessage } from './errors.js';

interface Flags extends PolicyFlags {
  hosts: string;
  sshKey?: string;
  output: 'text' | 'json';
}

/** Longest cell of the table: the file is the host's, so a huge field must not widen every row. */
const MAX_CELL = 100;
/** A cell as one line (a newline in a field would forge a row), cut at MAX_CELL. */
const cell = (text: string) => {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > MAX_CELL ? `${one.slice(0, MAX_CELL - 3)}...` : one;
};

/** The history as a table, newest first (the entries come so from parseHistory). */
export function formatHistory(entries: readonly HistoryEntry[]): string[] {
  const rows = entries.map((e) =>
    [
      e.at.replace(/\.\d+Z$/, 'Z'),
      /^[0-9a-f]{40}$/.test(e.revision) ? shortRev(e.revision) : e.revision,
      e.reason ? `${e.outcome} (${String(e.reason)})` : e.outcome,
      e.steps.join(', ') || '-',
      e.by,
      e.version,
    ].map(cell),
  );
  const all = [['TIME', 'REVISION', 'OUTCOME', 'STEPS', 'BY', 'NATSFLEET'], ...rows];
  const width = all[0].map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) =>
    r
      .map((c, i) => c.padEnd(width[i]))
      .join('  ')
      .trimEnd(),
  );
}

export function historyCommand(
  program: Command,
  out: (l: string) => void,
  err: (l: string) => void,
  setCode: (c: number) => void,
) {
  policyOptions(
    program
      .command('history')
      .description("list a host's applies, newest first, as the host recorded them (read over SSH)")
      .argument('<host>', 'the host (its manifest in --hosts)')
      .option('--hosts <dir>', 'hosts directory', 'hosts')
      .option('--ssh-key <path>', SSH_KEY_HELP)
      .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text')),
  ).action(async (name: string, opts: Flags) => {
    const { hosts } = loadManifests(await readManifestDir(opts.hosts), policyFrom(opts));
    const host = hosts.find((h) => h.name === name);
    if (!host) {
      err(`error: no valid host named ${name} in ${opts.hosts} (natsfleet validate ${opts.hosts} says why)`);
      return setCode(1);
    }
    const pool = await sshPool(opts);
    let entries: HistoryEntry[];
    try {
      const r = await (await pool.get(host)).runScript(historyScript(), 60_000);
      if (r.code !== 0) {
        err(`error: ${name}: reading the history failed (exit ${r.code}): ${r.stderr.trim().split('\n')[0]}`);
        return setCode(1);
      }
      entries = parseHistory(r.stdout);
    } catch (e) {
      err(`error: ${name}: ${userMessage(e)}`);
      return setCode(1);
    } finally {
      await pool.closeAll();
    }
    if (opts.output === 'json') out(JSON.stringify({ host: name, history: entries }, null, 2));
    else if (!entries.length)
      out(`${name}: no applies recorded (natsfleet has not changed this host since it keeps a history)`);
    else {
      out(`${name}: ${entries.length} apply(s), newest first`);
      for (const l of formatHistory(entries)) out(l);
    }
    setCode(0);
  });
}
