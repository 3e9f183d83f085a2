// Owns the words for a connection that failed below SSH (the name, the route, the port): what happened
// and what it means for the operator, instead of Node's errno text ("connect ECONNREFUSED 127.0.0.1:1").
export function socketErrorText(err: Error & { code?: string }, host: string, port: number): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return `connection refused: no SSH server listens on port ${port}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve ${host} (${err.code === 'ENOTFOUND' ? 'no such name' : 'DNS did not answer'})`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host unreachable (no route to ${host})`;
    case 'ETIMEDOUT':
      return 'TCP connection timed out';
    case 'ECONNRESET':
      return 'the connection was reset by the host';
    default:
      return err.message;
  }
}
