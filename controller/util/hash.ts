// Owns the content hash natsfleet compares files by (hex SHA-256), the same on every side.
import { createHash } from 'node:crypto';

export const sha256 = (content: string | Buffer): string => createHash('sha256').update(content).digest('hex');
