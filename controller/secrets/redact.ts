// Owns hiding secret values in anything shown to people (plans, diffs, comments, logs).
// Redaction is by position in the NATS config (token/password values), so it also hides
// old values that natsfleet never knew.
export const REDACTED = '<redacted>';

/** A token or password setting, also as a line of a unified diff (prefixed by "+", "-" or " "). */
const SECRET_LINE = /^([-+ ]?\s*(?:token|password)\s*[:=]\s*)(?:"[^"\n]*"|\S+)/gm;

export function redactNatsConfig(text: string): string {
  return text.replace(SECRET_LINE, `$1"${REDACTED}"`);
}
