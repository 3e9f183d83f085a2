// Owns the Problem value: one validation finding that names a file, a field path and, when known, a line.
export type Severity = 'error' | 'warning';

export interface Problem {
  file: string;
  /** Dotted field path such as "spec.nats.clientPort"; "" for the whole file. */
  path: string;
  line?: number;
  severity: Severity;
  message: string;
}

export function formatProblem(p: Problem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}` : p.file;
  const field = p.path ? ` ${p.path}:` : '';
  return `${where}: ${p.severity}:${field} ${p.message}`;
}

export const hasErrors = (problems: readonly Problem[]): boolean => problems.some((p) => p.severity === 'error');
