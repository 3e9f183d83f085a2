// Owns the controller's log output: JSON lines (pino) for machines and log collectors, and on a
// terminal one readable line per record (time, level, message, then its fields as key=value), with
// colours unless NO_COLOR is set.
import pino, { type Logger, type LoggerOptions } from 'pino';
import { terminalSafe } from './terminal-text.js';

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '90'],
  20: ['DEBUG', '90'],
  30: ['INFO', '32'],
  40: ['WARN', '33'],
  50: ['ERROR', '31'],
  60: ['FATAL', '31'],
};
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'app']);

const value = (v: unknown) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return typeof v === 'string' && /^[^\s"=]+$/.test(v) ? s : JSON.stringify(s === undefined ? null : v);
};

/** One pino JSON record as a terminal line (pure). A line that is not a record is kept as it is. */
export function prettyLine(json: string, color: boolean): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const [name, code] = LEVELS[Number(r.level)] ?? ['LOG', '0'];
  const time = new Date(Number(r.time)).toISOString().slice(11, 19);
  const level = color ? `\x1b[${code}m${name.padEnd(5)}\x1b[0m` : name.padEnd(5);
  const fields = Object.entries(r)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${value(v)}`);
  // Messages and fields may quote hosts (an error's text): never a control sequence of theirs.
  return terminalSafe([time, level, String(r.msg ?? ''), ...fields].join(' ').trimEnd());
}

export function controllerLogger(options: LoggerOptions, env: NodeJS.ProcessEnv = process.env): Logger {
  if (!process.stdout.isTTY) return pino(options);
  const color = !env.NO_COLOR && env.TERM !== 'dumb';
  return pino(options, { write: (line: string) => void process.stdout.write(`${prettyLine(line, color)}\n`) });
}
