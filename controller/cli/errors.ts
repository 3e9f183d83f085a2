// Owns how an unexpected failure reads to a user: one plain line. A Node system error (a missing file,
// a permission, a refused connection) says what and where in words instead of its errno text
// ("ENOENT: no such file or directory, scandir 'hosts'").
const ERRNO: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'not a directory',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'name not found',
};

export function userMessage(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const x = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (x.code && ERRNO[x.code]) {
    const where = x.path ?? (x.address ? `${x.address}${x.port ? `:${x.port}` : ''}` : undefined);
    return where ? `${where}: ${ERRNO[x.code]}` : ERRNO[x.code];
  }
  return e.message.split('\n')[0];
}
