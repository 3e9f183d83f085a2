// Owns quoting for POSIX shell command lines and systemd Exec lines: commands are built as argv
// arrays and only turned into text here, so no user text is ever pasted into a command.
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one argument for /bin/sh. */
export function shQuote(arg: string): string {
  if (arg !== '' && SHELL_SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Joins argv into a /bin/sh command line. */
export const sh = (...argv: string[]): string => argv.map(shQuote).join(' ');

/**
 * Joins argv for a systemd Exec line. Only plain words are accepted (systemd expands %, $ and
 * quotes in its own way): every value here is schema-restricted, and this is the last guard.
 */
export function systemdArgv(argv: readonly string[]): string {
  for (const a of argv) {
    if (!/^[A-Za-z0-9_@+=:,./-]+$/.test(a)) throw new Error(`refusing to put ${JSON.stringify(a)} in a systemd unit`);
  }
  return argv.join(' ');
}

/**
 * Wraps a script for `sh -s`: the shell parses the whole brace group before running it, and the
 * group's stdin is /dev/null, so no command inside can swallow the rest of the script.
 */
export const remoteScript = (script: string) => `{\n${script}\n} </dev/null\n`;
