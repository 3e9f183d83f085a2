// An unexpected failure reaches the user as one plain line: a system error in words, never its errno text.
import { describe, expect, it } from 'vitest';
import { userMessage } from '../../controller/cli/errors.js';

const sys = (code: string, extra: object) => Object.assign(new Error(`${code}: raw text`), { code, ...extra });

describe('userMessage', () => {
  it.each([
    [sys('ENOENT', { path: 'hosts', syscall: 'scandir' }), 'hosts: no such file or directory'],
    [sys('EACCES', { path: '/etc/natsfleet/key' }), '/etc/natsfleet/key: permission denied'],
    [sys('ECONNREFUSED', { address: '127.0.0.1', port: 9 }), '127.0.0.1:9: connection refused'],
    [sys('ENOSPC', {}), 'no space left on the device'],
    [new Error('first line\n    at stack (x.js:1:1)'), 'first line'],
    ['a string', 'a string'],
  ])('%#', (e, want) => {
    expect(userMessage(e)).toBe(want);
  });
});
