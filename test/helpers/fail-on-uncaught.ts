// Test support: any uncaught exception or unhandled rejection during a test fails it (a late SSH event,
// a promise nobody awaited). Registers the hooks of the calling test file.
import { afterEach, beforeEach, expect } from 'vitest';

/** `settleMs`: how long each test's late events are waited for before the check. */
export function failOnUncaught(settleMs: number): void {
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);
  beforeEach(() => {
    uncaught.length = 0;
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
  });
  afterEach(async () => {
    await new Promise((r) => setTimeout(r, settleMs));
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    expect(uncaught).toEqual([]);
  });
}
