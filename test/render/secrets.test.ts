// Secret references resolve from the controller's environment or files, and unsafe values are refused.
import { describe, expect, it } from 'vitest';
import { secretResolver } from '../../controller/secrets/resolve.js';

const resolver = (env: Record<string, string>, files: Record<string, string> = {}) =>
  secretResolver({
    env,
    readFile: (p) => {
      if (p in files) return files[p];
      throw Object.assign(new Error('x'), { code: 'ENOENT' });
    },
  });

describe('secretResolver', () => {
  it('reads env, file (without the trailing newline) and passes bcrypt through', () => {
    const r = resolver({ T: 'abc' }, { '/s/t': 'from-file\n' });
    expect(r({ env: 'T' }, 'f')).toBe('abc');
    expect(r({ file: '/s/t' }, 'f')).toBe('from-file');
    expect(r({ bcrypt: '$2a$11$x' }, 'f')).toBe('$2a$11$x');
  });

  it('names the field and the variable, never the value', () => {
    const r = resolver({ BAD: 'has"quote', SP: 'a b' });
    expect(() => r({ env: 'NOPE' }, 'spec.nats.auth.token')).toThrow(
      'spec.nats.auth.token: environment variable NOPE is not set',
    );
    expect(() => r({ env: 'BAD' }, 'f')).toThrow(/without quotes/);
    expect(() => r({ env: 'BAD' }, 'f')).not.toThrow(/has"quote/);
    expect(() => r({ env: 'SP' }, 'f')).toThrow(/spaces/);
    expect(() => r({ file: '/nope' }, 'f')).toThrow('f: cannot read secret file /nope: ENOENT');
  });
});
