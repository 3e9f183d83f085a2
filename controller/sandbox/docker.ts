// Owns running the local Docker CLI for the sandbox: argv in, stdout out, stderr in the error.
import { spawn } from 'node:child_process';

export class DockerError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(
      `docker ${args.slice(0, 3).join(' ')} failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
    this.name = 'DockerError';
  }
}

export interface RunOptions {
  /** Piped to the command's stdin: a string, or a readable stream (e.g. another command's stdout). */
  input?: string | NodeJS.ReadableStream;
  timeoutMs?: number;
  /** The working directory of the command (default: this process's). */
  cwd?: string;
}

export function docker(args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return run('docker', args, opts);
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.on('error', reject);
    // A command that exits early closes its stdin: its exit status, reported on close, says why.
    child.stdin.on('error', () => {});
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      // The last lines of stderr make the message: a timeout goes last.
      const stderr = Buffer.concat(err).toString() + (timedOut ? `\ntimed out after ${opts.timeoutMs! / 1000} s` : '');
      if (code === 0) resolve(Buffer.concat(out).toString());
      else
        reject(
          cmd === 'docker'
            ? new DockerError(args, code, stderr)
            : new Error(`${cmd} failed (exit ${code}): ${stderr.trim().slice(-500)}`),
        );
    });
    if (typeof opts.input === 'string') child.stdin.end(opts.input);
    else if (opts.input) opts.input.pipe(child.stdin);
    else child.stdin.end();
  });
}

/** `docker a | docker b`: streams the first command's stdout into the second (e.g. save | load). */
export function dockerPipe(from: readonly string[], to: readonly string[]): Promise<string> {
  const source = spawn('docker', from, { stdio: ['ignore', 'pipe', 'pipe'] });
  const err: Buffer[] = [];
  source.stderr.on('data', (b: Buffer) => err.push(b));
  const sourceDone = new Promise<void>((resolve, reject) =>
    source.on('close', (code) =>
      code === 0 ? resolve() : reject(new DockerError(from, code, Buffer.concat(err).toString())),
    ),
  );
  return Promise.all([docker(to, { input: source.stdout }), sourceDone]).then(([out]) => out);
}

export async function dockerOk(args: readonly string[]): Promise<boolean> {
  return docker(args).then(
    () => true,
    () => false,
  );
}
