// Owns label selectors (`-l region=eu,tier!=canary`), Kubernetes' equality-based form: `key=value`
// (also `key==value`), `key!=value`, `key` (the label is set), `!key` (it is not). Terms separated by
// commas all hold; several selectors (the flag repeated) are alternatives. Pure.
export type SelectorTerm = { key: string; op: 'eq' | 'ne'; value: string } | { key: string; op: 'exists' | 'absent' };
export type Selector = SelectorTerm[];

export class SelectorError extends Error {}

const KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?$/;

export function parseSelector(text: string): Selector {
  const terms = text.split(',').map((t) => t.trim());
  if (!text.trim() || terms.some((t) => !t)) throw new SelectorError(`"${text}": empty selector term`);
  return terms.map((t): SelectorTerm => {
    const m = /^(.*?)(==|!=|=)(.*)$/.exec(t);
    if (!m) {
      const absent = t.startsWith('!');
      const key = absent ? t.slice(1).trim() : t;
      if (!KEY.test(key)) throw new SelectorError(`"${t}": not a label key`);
      return { key, op: absent ? 'absent' : 'exists' };
    }
    const [key, op, value] = [m[1].trim(), m[2], m[3].trim()];
    if (!KEY.test(key)) throw new SelectorError(`"${t}": "${key}" is not a label key`);
    if (!VALUE.test(value)) throw new SelectorError(`"${t}": "${value}" is not a label value`);
    return { key, op: op === '!=' ? 'ne' : 'eq', value };
  });
}

export function matches(selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  return selector.every((t) => {
    const has = Object.prototype.hasOwnProperty.call(labels, t.key);
    if (!('value' in t)) return t.op === 'exists' ? has : !has;
    return t.op === 'eq' ? has && labels[t.key] === t.value : !has || labels[t.key] !== t.value;
  });
}

/** Any of several selectors (the flag repeated); no selector selects everything. */
export const matchesAny = (selectors: readonly Selector[], labels: Readonly<Record<string, string>>) =>
  selectors.length === 0 || selectors.some((s) => matches(s, labels));
