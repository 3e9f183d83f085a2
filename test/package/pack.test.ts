// The npm tarball ships the CLI (bin/, the built dist/), the schemas, deploy/, the sandbox's assets and the
// README, and no test material: no test/ or .sandbox/ path, no private key, no token or secret fixture.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fixtures.js';

const MAIN = 'dist/controller/cli/main.js';
/** What bin/natsfleet.js runs (scripts/bundle.mjs), made from MAIN and the modules it imports. */
const BUNDLE = 'dist/natsfleet.cjs';
// Not a real key: what one looks like, to check the test's pattern.
const KEY = `-----BEGIN ${'OPENSSH'} PRIVATE KEY-----\n${'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB'}\n-----END OPENSSH PRIVATE KEY-----\n`;
let files: string[] = [];

beforeAll(() => {
  if (!existsSync(join(ROOT, MAIN))) {
    try {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe', timeout: 600_000 });
    } catch (e) {
      // tsc writes its output even when it reports type errors: only a missing output is fatal.
      if (!existsSync(join(ROOT, MAIN))) throw e;
    }
  }
  if (!existsSync(join(ROOT, BUNDLE)))
    execFileSync('node', ['scripts/bundle.mjs'], { cwd: ROOT, stdio: 'pipe', timeout: 600_000 });
  // --ignore-scripts: no prepare (build) run; --dry-run: nothing written.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  const [pack] = JSON.parse(out) as { files: { path: string }[] }[];
  files = pack.files.map((f) => f.path);
}, 660_000);

describe('npm pack', () => {
  it('ships bin/, dist/, schemas/, deploy/, the sandbox assets, README.md and package.json, nothing else', () => {
    const allowed =
      /^(bin|dist|schemas|deploy|controller\/sandbox\/assets)\/|^(README\.md|package\.json|LICEN[CS]E(\.\w+)?)$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    expect(files).toContain('bin/natsfleet.js');
    expect(files).toContain(MAIN);
    expect(files).toContain(BUNDLE);
    expect(files).toContain(`${BUNDLE}.sha256`);
    expect(files).toContain('bin/load-bundle.js');
    // The code caches the commands run here wrote beside the bundle are this machine's: never shipped.
    expect(files.filter((f) => f.startsWith('dist/code-cache/'))).toEqual([]);
    expect(files).toContain('schemas/natshost.schema.json');
    expect(files).toContain('README.md');
    expect(files.some((f) => f.startsWith('deploy/'))).toBe(true);
    // `natsfleet sandbox up` builds its host images from these, from the installed package too.
    expect(files).toContain('controller/sandbox/assets/host/sshd-natsfleet.conf');
    // Only the assets of controller/: its TypeScript sources are shipped compiled, in dist/.
    expect(files.filter((f) => f.startsWith('controller/') && f.endsWith('.ts'))).toEqual([]);
  });

  it('has no path under test/ or .sandbox/', () => {
    expect(files.filter((f) => /(^|\/)(test|\.sandbox)\//.test(f))).toEqual([]);
  });

  it('has no file holding a private key', () => {
    // A key's armour followed by its body (PEM headers allowed; in a file or as a string with \n escapes):
    // the bundled libraries (dist/natsfleet*) name the armour in their parsers, with no key after it.
    const keyBlock =
      /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:\\n|\s)+(?:[\w-]+: [^\n\\]*(?:\\n|\s)+)*[A-Za-z0-9+/=]{40,}/;
    expect(files.filter((f) => keyBlock.test(readFileSync(join(ROOT, f), 'latin1')))).toEqual([]);
    for (const key of [
      KEY,
      KEY.replace(/\n/g, '\\n'),
      KEY.replace('KEY-----\n', 'KEY-----\nProc-Type: 4,ENCRYPTED\n\n'),
    ])
      expect(keyBlock.test(key), key).toBe(true);
  });

  it('has no file named like a key, token or secret fixture', () => {
    const key = /^id_(rsa|dsa|ecdsa|ed25519)|\.(pem|key|p12|pfx|jks|crt)$|^\.env($|\.)/i;
    // Compiled modules may be named after what they handle (secrets/resolve.js): the rule is for data files.
    const fixture = (name: string) =>
      !/\.(js|js\.map|d\.ts)$/.test(name) && /token|secret|passw|credential/i.test(name);
    expect(files.map((f) => basename(f)).filter((n) => key.test(n) || fixture(n))).toEqual([]);
  });
});
