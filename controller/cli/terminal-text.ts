// Owns what may reach the operator's terminal: text from hosts (container names, stderr, /healthz
// answers, host keys, config keys) is printed in the same lines as natsfleet's own, so a control
// character in it could move the cursor, rewrite earlier lines, retitle the window or worse. Every
// control character except newline and tab is shown as a visible escape (`\x1b`), and only the colour
// sequences natsfleet itself draws are kept.

/** natsfleet's own colours: reset, red, green, yellow, grey (progress.ts, log.ts). */
const OWN_COLOUR = /^\x1b\[(?:0|3[123]|90)m/;
// C0 but newline and tab, DEL, C1 (U+0080..U+009F, 8-bit controls some terminals obey).
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

const visible = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** `text` safe to print on a terminal (pure). */
export function terminalSafe(text: string): string {
  if (!CONTROL.test(text)) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const own = text[i] === '\x1b' ? OWN_COLOUR.exec(text.slice(i, i + 6)) : null;
    if (own) {
      out += own[0];
      i += own[0].length - 1;
    } else out += CONTROL.test(text[i]) ? visible(text[i]) : text[i];
  }
  return out;
}
