// Test helper: the natsfleet command line run in-process, its normal and error output kept apart. A run
// that outlasts its deadline fails with what it printed so far (hosts are printed as they finish), not
// with a bare test timeout that says nothing of where it stood.
import { main } from '../../controller/cli/main.js';

export const CLI_DEADLINE_MS = 150_000;

/** main() with the lines it prints pushed to `out` and `err` (the same array for one stream). */
export async function mainWithin(
  args: readonly string[],
  out: string[],
  err: string[] = out,
  deadlineMs = CLI_DEADLINE_MS,
): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const printed = [...new Set([...out, ...err])].join('\n');
      reject(new Error(`natsfleet ${args.join(' ')} still running after ${deadlineMs / 1000} s:\n${printed}`));
    }, deadlineMs);
  });
  try {
    return await Promise.race([
      main(
        ['node', 'natsfleet', ...args],
        (l) => out.push(l),
        (l) => err.push(l),
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await mainWithin(args, out, err);
  return { code, out: out.join('\n'), err: err.join('\n') };
}
