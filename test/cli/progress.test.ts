// The CLI's live feedback: each host's lines printed as it finishes, a status line only on a terminal,
// colours only on a terminal and never with NO_COLOR.
import { describe, expect, it } from 'vitest';
import { paint, Progress, statusLine, terminalOf, type Terminal } from '../../controller/cli/progress.js';

describe('progress', () => {
  it('prints a host as it is done, in the order hosts finish, with no status line off a terminal', () => {
    const out: string[] = [];
    const written: string[] = [];
    const t: Terminal = { tty: false, color: false, write: (s) => written.push(s) };
    const p = new Progress('apply', ['a', 'b', 'c'], t, (l) => out.push(l));
    p.host('b', ['b: applied']);
    p.host('a', ['a: failed\n  error: x']);
    p.stop();
    expect(out).toEqual(['b: applied', 'a: failed', '  error: x']);
    expect(written).toEqual([]);
  });

  it('on a terminal, a status line counts and names what runs, cleared before every host line', () => {
    const written: string[] = [];
    const t: Terminal = { tty: true, color: false, write: (s) => written.push(s) };
    const p = new Progress('plan', ['a', 'b'], t, () => written.push('<line>'));
    p.host('a', ['a: no changes']);
    p.stop();
    expect(written[0]).toContain('plan: 0/2 host(s) done; waiting for a, b');
    expect(written.indexOf('<line>')).toBeGreaterThan(written.indexOf('\r\x1b[2K'));
    expect(written.join('')).toContain('plan: 1/2 host(s) done; waiting for b');
    expect(written.at(-1)).toBe('\r\x1b[2K');
  });

  it('statusLine names at most three hosts', () => {
    expect(statusLine('apply', 1, 6, ['b', 'c', 'd', 'e', 'f'])).toBe(
      '⠋ apply: 1/6 host(s) done; waiting for b, c, d, +2',
    );
  });

  it('colours verdicts only when allowed; NO_COLOR turns them off', () => {
    expect(paint('h1: applied, Healthy', { color: false })).toBe('h1: applied, Healthy');
    expect(paint('h1: failed, Degraded', { color: true })).toBe('h1: \x1b[31mfailed\x1b[0m, \x1b[31mDegraded\x1b[0m');
    expect(terminalOf({ NO_COLOR: '1' }).color).toBe(false);
  });
});
