// Host-key values: hostKeyProblem accepts every real public key of the pinned types (with or without a
// .pub comment) and rejects blobs that are truncated, padded, mislabelled, non-canonical or too weak.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatHostKey,
  hostKeyAlgorithms,
  hostKeyProblem,
  keyBlob,
  keyType,
} from '../../controller/manifest/host-key.js';
import { generateKeyPairSync } from '../helpers/ssh-keys.js';

const gen = generateKeyPairSync;
const bare = (k: string) => k.split(' ').slice(0, 2).join(' ');
const keys = {
  ed25519: bare(gen('ed25519').public),
  ecdsa256: bare(gen('ecdsa', { bits: 256 }).public),
  ecdsa384: bare(gen('ecdsa', { bits: 384 }).public),
  ecdsa521: bare(gen('ecdsa', { bits: 521 }).public),
  rsa2048: bare(gen('rsa', { bits: 2048 }).public),
  rsa1024: bare(gen('rsa', { bits: 1024 }).public),
};

/** SSH wire format: uint32 length + bytes, per field. */
const wire = (...fields: (string | Buffer)[]) =>
  Buffer.concat(
    fields.flatMap((f) => {
      const b = typeof f === 'string' ? Buffer.from(f) : f;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      return [len, b];
    }),
  );
const blobOf = (k: string) => Buffer.from(k.split(' ')[1], 'base64');
const text = (type: string, blob: Buffer) => `${type} ${blob.toString('base64')}`;

/** Fields of a key blob. */
function fields(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < blob.length;) {
    const len = blob.readUInt32BE(at);
    out.push(blob.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out;
}

describe('hostKeyProblem accepts real keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nf-hostkey-'));
  const keygen = (type: string, bits?: number) => {
    const f = join(dir, `k-${type}-${bits ?? 0}`);
    execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-f', f]);
    return readFileSync(`${f}.pub`, 'utf8').trim(); // with ssh-keygen's "user@host" comment
  };
  const fromKeygen = {
    'ssh-keygen ed25519': keygen('ed25519'),
    'ssh-keygen ecdsa 256': keygen('ecdsa', 256),
    'ssh-keygen ecdsa 384': keygen('ecdsa', 384),
    'ssh-keygen ecdsa 521': keygen('ecdsa', 521),
    'ssh-keygen rsa 3072': keygen('rsa', 3072),
  };

  it.each([...Object.entries(keys), ...Object.entries(fromKeygen)])('%s', (_name, key) => {
    expect(hostKeyProblem(key)).toBeUndefined();
    expect(hostKeyProblem(`${bare(key)} root@host`)).toBeUndefined();
    expect(hostKeyProblem(`  ${bare(key)}\troot@host some words  \n`)).toBeUndefined();
    expect(formatHostKey(`${bare(key)} root@host`)).toBe(bare(key));
    expect(keyBlob(`${bare(key)} root@host`).equals(blobOf(key))).toBe(true);
    expect(formatHostKey(blobOf(key))).toBe(bare(key));
  });
});

describe('hostKeyProblem rejects', () => {
  const ed = blobOf(keys.ed25519);
  const ec = blobOf(keys.ecdsa256);
  const [, , point] = fields(ec);
  const [, e, n] = fields(blobOf(keys.rsa2048));
  const edB64 = keys.ed25519.split(' ')[1];
  const ecB64 = keys.ecdsa256.split(' ')[1]; // 104 bytes: ends in one "=", the char before has 2 pad bits
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const padBitsSet = `${ecB64.slice(0, -2)}${B64[B64.indexOf(ecB64.at(-2)!) + 1]}=`;
  const shortN = Buffer.concat([Buffer.from([0]), Buffer.alloc(64, 0xc3)]); // 512 bits

  it.each<[string, string, RegExp]>([
    ['no base64', 'ssh-ed25519', /^must be an SSH public host key: "<type> <base64> \[comment\]"/],
    ['an empty value', '   ', /^must be an SSH public host key/],
    ['only base64', 'AAAA', /^must be an SSH public host key/],
    [
      'an unsupported type',
      text('ssh-dss', wire('ssh-dss', Buffer.alloc(20))),
      /^has an unsupported key type "ssh-dss"/,
    ],
    [
      'a truncated ed25519 key',
      text('ssh-ed25519', ed.subarray(0, ed.length - 1)),
      /^is not a valid ssh-ed25519 public key: the key blob is truncated/,
    ],
    ['a short ed25519 key', text('ssh-ed25519', wire('ssh-ed25519', Buffer.alloc(31, 7))), /31 bytes, not 32/],
    ['only the type', text('ssh-ed25519', wire('ssh-ed25519')), /truncated \(no ed25519 public key\)/],
    ['extra bytes after the key', text('ssh-ed25519', Buffer.concat([ed, Buffer.from([0])])), /1 unexpected byte/],
    [
      'an ed25519 blob declared ecdsa',
      text('ecdsa-sha2-nistp256', ed),
      /^is not a valid ecdsa-sha2-nistp256 public key: the key data names "ssh-ed25519"$/,
    ],
    [
      'an ecdsa256 blob declared ecdsa384',
      text('ecdsa-sha2-nistp384', ec),
      /not a valid ecdsa-sha2-nistp384 public key: the key data names "ecdsa-sha2-nistp256"/,
    ],
    ['an rsa blob declared ed25519', `ssh-ed25519 ${keys.rsa2048.split(' ')[1]}`, /the key data names "ssh-rsa"/],
    ['base64 without padding', `ecdsa-sha2-nistp256 ${ecB64.replace(/=+$/, '')}`, /not valid base64/],
    ['base64 with non-zero pad bits', `ecdsa-sha2-nistp256 ${padBitsSet}`, /not valid base64/],
    ['base64 with extra padding', `ecdsa-sha2-nistp256 ${ecB64}==`, /not valid base64/],
    ['base64 with a bad character', `ssh-ed25519 ${edB64.slice(0, 10)}!${edB64.slice(11)}`, /not valid base64/],
    ['base64url (no padding: never canonical)', `ecdsa-sha2-nistp256 ${ec.toString('base64url')}`, /not valid base64/],
    ['a wrong curve name', text('ecdsa-sha2-nistp256', wire('ecdsa-sha2-nistp256', 'nistp384', point)), /curve/],
    [
      'a compressed point',
      text(
        'ecdsa-sha2-nistp256',
        wire('ecdsa-sha2-nistp256', 'nistp256', Buffer.concat([Buffer.from([2]), point.subarray(1)])),
      ),
      /not an uncompressed nistp256 point/,
    ],
    [
      'a point of the wrong size',
      text('ecdsa-sha2-nistp384', wire('ecdsa-sha2-nistp384', 'nistp384', point)),
      /not an uncompressed nistp384 point/,
    ],
    [
      'a point off the curve',
      text(
        'ecdsa-sha2-nistp256',
        wire('ecdsa-sha2-nistp256', 'nistp256', Buffer.concat([point.subarray(0, 64), Buffer.from([point[64] ^ 1])])),
      ),
      /not on the nistp256 curve/,
    ],
    ['a 512-bit RSA key', text('ssh-rsa', wire('ssh-rsa', e, shortN)), /has 512 bits; at least 1024/],
    ['a negative RSA modulus', text('ssh-rsa', wire('ssh-rsa', e, n.subarray(1))), /modulus is negative/],
    ['an even RSA exponent', text('ssh-rsa', wire('ssh-rsa', Buffer.from([2]), n)), /exponent is not a positive odd/],
    ['an RSA key without modulus', text('ssh-rsa', wire('ssh-rsa', e)), /truncated \(no RSA modulus\)/],
  ])('%s', (_name, key, message) => {
    expect(hostKeyProblem(key)).toMatch(message);
  });

  it('the cases above are what they claim', () => {
    expect(n[0]).toBe(0); // the 2048-bit modulus needs a sign byte, so dropping it makes it negative
    expect(ecB64).toMatch(/[^=]=$/);
    expect(Buffer.from(padBitsSet, 'base64').equals(ec)).toBe(true); // decodes the same, not canonical
    expect(hostKeyProblem(`ecdsa-sha2-nistp256 ${ecB64}`)).toBeUndefined();
  });
});

describe('helpers', () => {
  it('keyType reads the type inside a blob; hostKeyAlgorithms pins the negotiation to it', () => {
    expect(keyType(blobOf(keys.ecdsa521))).toBe('ecdsa-sha2-nistp521');
    expect(keyType(Buffer.alloc(2))).toBe('');
    expect(hostKeyAlgorithms('ssh-ed25519')).toEqual(['ssh-ed25519']);
    expect(hostKeyAlgorithms('ecdsa-sha2-nistp384')).toEqual(['ecdsa-sha2-nistp384']);
    expect(hostKeyAlgorithms('ssh-rsa')).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });
});
