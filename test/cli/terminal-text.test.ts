// Text from hosts reaches the operator's terminal in natsfleet's lines: never a control sequence of theirs.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { terminalSafe } from '../../controller/cli/terminal-text.js';
import { prettyLine } from '../../controller/cli/log.js';
import { paint } from '../../controller/cli/progress.js';
import { main } from '../../controller/cli/main.js';

const ESC = '\x1b';

describe('terminalSafe', () => {
  it('shows control characters as escapes: a title change, a cursor move, a C1 CSI, a carriage return', () => {
    expect(terminalSafe(`web${ESC}]0;pwned\x07`)).toBe('web\\x1b]0;pwned\\x07');
    expect(terminalSafe(`a${ESC}[2J${ESC}[1;1Hb`)).toBe('a\\x1b[2J\\x1b[1;1Hb');
    expect(terminalSafe('x\u009b2Jy')).toBe('x\\x9b2Jy');
    expect(terminalSafe('ok\rFAILED')).toBe('ok\\x0dFAILED');
  });

  it("keeps newlines, tabs, text and natsfleet's own colours", () => {
    expect(terminalSafe('a\tb\nc ü ⠋')).toBe('a\tb\nc ü ⠋');
    const painted = paint('nats-1: Healthy, Degraded', { color: true });
    expect(terminalSafe(painted)).toBe(painted);
    // A colour natsfleet never draws (here: concealed text) is not kept.
    expect(terminalSafe(`${ESC}[8mhidden`)).toBe('\\x1b[8mhidden');
  });
});

describe('where text reaches the terminal', () => {
  afterEach(() => vi.restoreAllMocks());

  it("the CLI's default stdout and stderr", async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((l: string) => void lines.push(l));
    expect(await main(['node', 'natsfleet', 'completion', `fish${ESC}]0;pwned\x07`])).toBe(1);
    expect(lines.join('\n')).not.toContain(ESC);
    expect(lines.join('\n')).toContain('\\x1b]0;pwned\\x07');
  });

  it("the controller's readable log lines (a field and a message quoting a host)", () => {
    const rec = JSON.stringify({ level: 50, time: 0, msg: `observe failed ${ESC}[2K`, err: `x${ESC}]0;t\x07` });
    const line = prettyLine(rec, true);
    expect(line.replace(/\x1b\[(0|31)m/g, '')).not.toContain(ESC);
  });
});
