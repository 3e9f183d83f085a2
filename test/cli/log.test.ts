// The controller's logs: JSON off a terminal; on one, a readable line per record with its fields.
import { describe, expect, it } from 'vitest';
import { prettyLine } from '../../controller/cli/log.js';

describe('prettyLine', () => {
  const rec = JSON.stringify({
    level: 40,
    time: Date.UTC(2026, 10, 26, 22, 40, 5),
    pid: 7,
    hostname: 'ci',
    app: 'natsfleet',
    msg: 'commit status failed',
    err: 'HTTP 502 from api.github.com',
    host: 'nats-us-1',
    attempt: 3,
  });

  it('time, level, message, then the fields', () => {
    expect(prettyLine(rec, false)).toBe(
      '22:40:05 WARN  commit status failed err="HTTP 502 from api.github.com" host=nats-us-1 attempt=3',
    );
  });

  it('colours the level only when asked', () => {
    expect(prettyLine(rec, true)).toContain('\x1b[33mWARN \x1b[0m');
  });

  it('a line that is not a record is kept', () => {
    expect(prettyLine('plain text\n', false)).toBe('plain text');
  });
});
