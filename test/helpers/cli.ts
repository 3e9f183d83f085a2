// Test helper: the natsfleet command line run in-process, its normal and error output kept apart.
import { main } from '../../controller/cli/main.js';

export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    ['node', 'natsfleet', ...args],
    (l) => out.push(l),
    (l) => err.push(l),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}
