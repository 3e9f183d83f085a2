// Owns host-key values: parsing the "<type> <base64>" form of a manifest, the type inside a key
// blob, and OpenSSH-style SHA256 fingerprints for error messages.
import { createHash, timingSafeEqual } from 'node:crypto';

export function keyBlob(hostKey: string): Buffer {
  return Buffer.from(hostKey.trim().split(/\s+/)[1] ?? '', 'base64');
}

export function keyType(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

export const formatHostKey = (blob: Buffer) => `${keyType(blob)} ${blob.toString('base64')}`;

export const fingerprint = (blob: Buffer) =>
  `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;

export function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}
