// Owns how a Git revision is shown to people: its first 12 hex digits (logs, comments, status).
export const shortRev = (sha: string) => sha.slice(0, 12);
