// Owns the CLI's live feedback while hosts are reconciled: each host's line is printed as soon as that
// host is done (never only at the end: a silent host must not mean minutes of silence), and on a
// terminal a status line on stderr counts the hosts done and names the ones still running, redrawn
// under the lines. Colours on a terminal only, and never with NO_COLOR set (no-color.org).
export interface Terminal {
  /** stderr is a terminal: a status line may be drawn there. */
  tty: boolean;
  /** Colours allowed on stdout. */
  color: boolean;
  write: (text: string) => void;
}

export function terminalOf(env: NodeJS.ProcessEnv = process.env): Terminal {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return {
    tty: Boolean(process.stderr.isTTY),
    color: Boolean(process.stdout.isTTY) && !noColor && env.TERM !== 'dumb',
    write: (t) => void process.stderr.write(t),
  };
}

const PAINT: [RegExp, string][] = [
  [/\b(Healthy|Synced|applied|unchanged|no changes)\b/g, '32'],
  [/\b(OutOfSync|Progressing|takeover|rolled back)\b/g, '33'],
  [/\b(Degraded|Unknown|failed|blocked|Missing|unreachable|error)\b/g, '31'],
];

/** A line with its verdict words coloured (only when the terminal takes colours). */
export const paint = (line: string, t: Pick<Terminal, 'color'>) =>
  t.color ? PAINT.reduce((l, [re, code]) => l.replace(re, (w) => `\x1b[${code}m${w}\x1b[0m`), line) : line;

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** The status line's text (pure). */
export function statusLine(verb: string, done: number, total: number, running: readonly string[], frame = 0): string {
  const left = running.slice(0, 3).join(', ') + (running.length > 3 ? `, +${running.length - 3}` : '');
  const waiting = left ? `; waiting for ${left}` : '';
  return `${FRAMES[frame % FRAMES.length]} ${verb}: ${done}/${total} host(s) done${waiting}`;
}

export class Progress {
  private done = 0;
  private frame = 0;
  private timer?: NodeJS.Timeout;
  private readonly pending: Set<string>;

  constructor(
    private readonly verb: string,
    hosts: readonly string[],
    private readonly t: Terminal,
    private readonly out: (line: string) => void,
  ) {
    this.pending = new Set(hosts);
    if (t.tty && hosts.length) {
      this.draw();
      this.timer = setInterval(() => this.draw(), 100);
      this.timer.unref();
    }
  }

  private clear() {
    if (this.timer) this.t.write('\r\x1b[2K');
  }

  private draw() {
    this.clear();
    this.t.write(statusLine(this.verb, this.done, this.done + this.pending.size, [...this.pending], this.frame++));
  }

  /** A host is done: its lines are printed now, above the status line. */
  host(name: string, lines: readonly string[]) {
    if (this.pending.delete(name)) this.done++;
    this.print(lines);
  }

  print(lines: readonly string[]) {
    this.clear();
    for (const l of lines) for (const part of l.split('\n')) this.out(paint(part, this.t));
    if (this.timer) this.draw();
  }

  stop() {
    this.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
