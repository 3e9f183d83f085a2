// Owns how natsfleet orders names, paths and timestamps: by code point, the same on every machine.
// Not String.prototype.localeCompare: its order depends on the process's locale, and its first call
// builds ICU's collator (6 ms of every CLI run's start).

/** A comparator for sort(): code point order. */
export const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
