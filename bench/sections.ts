// Owns bench/RESULTS.md as sections, so that each benchmark scenario rewrites only its own part: the
// text before the first `## ` heading (the title and the hosts scenario's table), then one section per
// `## ` heading, keyed by that heading without its numbers and parenthesised details ("of 1000 hosts"
// and "of 10000 hosts (simulated)" are one section). Pure: run.ts reads and writes the file.

export interface Section {
  /** PREAMBLE, or the heading's key (sectionKey). */
  key: string;
  /** The section's text, its heading included, without trailing blank lines. */
  text: string;
}

/** The key of the text before the first `## ` heading. */
export const PREAMBLE = '#';

/** A `## ` heading's key: its words, numbers and anything in parentheses left out. */
export const sectionKey = (heading: string): string =>
  heading
    .replace(/\([^)]*\)/g, '')
    .replace(/\d[\d,.]*/g, 'N')
    .replace(/\s+/g, ' ')
    .trim();

export function splitSections(md: string): Section[] {
  const out: Section[] = [];
  let key = PREAMBLE;
  let lines: string[] = [];
  let fenced = false;
  const flush = () => {
    const text = lines.join('\n').trimEnd();
    if (text.trim() !== '') out.push({ key, text });
  };
  for (const line of md.split('\n')) {
    if (/^(```|~~~)/.test(line)) fenced = !fenced;
    if (!fenced && line.startsWith('## ')) {
      flush();
      key = sectionKey(line);
      lines = [];
    }
    lines.push(line);
  }
  flush();
  return out;
}

/**
 * `old` with the sections of `fresh` in place of those with the same keys: at the place of the first
 * of them (a preamble always first), or at the end when `old` has none. Every other section of `old`
 * stays, in its order.
 */
export function mergeSections(old: string, fresh: string): string {
  const next = splitSections(fresh);
  const keys = new Set(next.map((s) => s.key));
  const preamble = next.filter((s) => s.key === PREAMBLE);
  const rest = next.filter((s) => s.key !== PREAMBLE);
  const out: Section[] = [];
  let placed = false;
  for (const s of splitSections(old)) {
    if (s.key === PREAMBLE) {
      if (preamble.length === 0) out.push(s);
    } else if (!keys.has(s.key)) out.push(s);
    else if (!placed) {
      out.push(...rest);
      placed = true;
    }
  }
  if (!placed) out.push(...rest);
  // A new preamble goes first; without one, the old one stays where it was (first).
  return `${[...preamble, ...out].map((s) => s.text).join('\n\n')}\n`;
}
