// Owns host-key values (pure): parsing the "<type> <base64> [comment]" form of a manifest, checking
// that the blob is a well-formed public key of its declared type (SSH wire format), the type inside a
// key blob, the host-key algorithms to offer for a pinned key, and OpenSSH-style SHA256 fingerprints.
import { createHash, createPublicKey, timingSafeEqual } from 'node:crypto';

/** The key types a manifest may pin. */
export const HOST_KEY_TYPES = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
] as const;

const ECDSA: Record<string, { curve: string; pointBytes: number; jwk: string }> = {
  'ecdsa-sha2-nistp256': { curve: 'nistp256', pointBytes: 65, jwk: 'P-256' },
  'ecdsa-sha2-nistp384': { curve: 'nistp384', pointBytes: 97, jwk: 'P-384' },
  'ecdsa-sha2-nistp521': { curve: 'nistp521', pointBytes: 133, jwk: 'P-521' },
};

const MIN_RSA_BITS = 1024;

/** The key blob of "<type> <base64> [comment]" (the comment, if any, is ignored). */
export function keyBlob(hostKey: string): Buffer {
  return Buffer.from(hostKey.trim().split(/\s+/)[1] ?? '', 'base64');
}

export function keyType(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** "<type> <base64>" of a key blob, or of a manifest value (dropping any trailing comment). */
export function formatHostKey(key: Buffer | string): string {
  const blob = typeof key === 'string' ? keyBlob(key) : key;
  return `${keyType(blob)} ${blob.toString('base64')}`;
}

export const fingerprint = (blob: Buffer) =>
  `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

export function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

/**
 * The host-key algorithms to offer in the key exchange for a pinned key of this type, so that a
 * host holding several keys presents the pinned one (an RSA key may sign with SHA-2 or SHA-1).
 */
export function hostKeyAlgorithms(type: string): string[] {
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [type];
}

class WireError extends Error {}

/** Reads SSH wire-format strings (uint32 length + bytes) from a blob. */
class WireReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  string(what: string): Buffer {
    if (this.at + 4 > this.buf.length) throw new WireError(`the key blob is truncated (no ${what})`);
    const len = this.buf.readUInt32BE(this.at);
    if (this.at + 4 + len > this.buf.length) throw new WireError(`the key blob is truncated (in the ${what})`);
    const out = this.buf.subarray(this.at + 4, this.at + 4 + len);
    this.at += 4 + len;
    return out;
  }

  get rest(): number {
    return this.buf.length - this.at;
  }
}

const isCanonicalBase64 = (s: string) =>
  s.length > 0 &&
  s.length % 4 === 0 &&
  /^[A-Za-z0-9+/]+={0,2}$/.test(s) &&
  Buffer.from(s, 'base64').toString('base64') === s;

/** Bits of a non-negative big-endian integer (leading zero bytes allowed). */
function bitLength(n: Buffer): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]));
}

function checkRsa(r: WireReader): string | undefined {
  const e = r.string('RSA exponent');
  const n = r.string('RSA modulus');
  if (e.length && e[0] & 0x80) return 'the RSA exponent is negative';
  if (n.length && n[0] & 0x80) return 'the RSA modulus is negative';
  if (bitLength(e) === 0 || (e[e.length - 1] & 1) === 0) return 'the RSA exponent is not a positive odd number';
  const bits = bitLength(n);
  if (bits < MIN_RSA_BITS) return `the RSA modulus has ${bits} bits; at least ${MIN_RSA_BITS} are required`;
  return undefined;
}

function checkEcdsa(type: string, r: WireReader): string | undefined {
  const want = ECDSA[type];
  const curve = r.string('curve name').toString('latin1');
  if (curve !== want.curve) return `the curve is ${JSON.stringify(curve)}, but ${type} needs ${want.curve}`;
  const q = r.string('public point');
  if (q.length !== want.pointBytes || q[0] !== 0x04)
    return `the public point is not an uncompressed ${want.curve} point (${want.pointBytes} bytes starting with 0x04)`;
  const half = (q.length - 1) / 2;
  try {
    createPublicKey({
      key: {
        kty: 'EC',
        crv: want.jwk,
        x: q.subarray(1, 1 + half).toString('base64url'),
        y: q.subarray(1 + half).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch {
    return `the public point is not on the ${want.curve} curve`;
  }
  return undefined;
}

/**
 * Why "<type> <base64> [comment]" is not a valid public key of its declared type, or undefined when
 * it is. The base64 must be canonical; the blob must hold exactly the fields of that key type. The
 * message reads after a field name: "spec.ssh.hostKey: is not a valid ssh-rsa public key: ...".
 */
export function hostKeyProblem(hostKey: string): string | undefined {
  const [type, b64] = hostKey.trim().split(/\s+/);
  if (!type || !b64)
    return 'must be an SSH public host key: "<type> <base64> [comment]" (as in a .pub file or ssh-keyscan output)';
  if (!(HOST_KEY_TYPES as readonly string[]).includes(type))
    return `has an unsupported key type ${JSON.stringify(type)} (supported: ${HOST_KEY_TYPES.join(', ')})`;
  const problem = blobProblem(type, b64);
  return problem && `is not a valid ${type} public key: ${problem}`;
}

function blobProblem(type: string, b64: string): string | undefined {
  if (!isCanonicalBase64(b64)) return 'the key data is not valid base64 (canonical, padded, nothing else)';
  const r = new WireReader(Buffer.from(b64, 'base64'));
  try {
    const inner = r.string('key type').toString('latin1');
    if (inner !== type) return `the key data names ${JSON.stringify(inner)}`;
    let problem: string | undefined;
    if (type === 'ssh-ed25519') {
      const pk = r.string('ed25519 public key');
      if (pk.length !== 32) problem = `the ed25519 public key is ${pk.length} bytes, not 32`;
    } else if (type === 'ssh-rsa') problem = checkRsa(r);
    else problem = checkEcdsa(type, r);
    if (problem) return problem;
  } catch (e) {
    if (e instanceof WireError) return e.message;
    throw e;
  }
  if (r.rest > 0) return `the key blob has ${r.rest} unexpected byte(s) after the key`;
  return undefined;
}
