// Label selectors as operators write them after -l: every form, and the errors that name the bad term.
import { describe, expect, it } from 'vitest';
import { matches, matchesAny, parseSelector, SelectorError } from '../../controller/manifest/selector.js';

const eu = { region: 'eu', tier: 'canary' };
const us = { region: 'us' };

describe('parseSelector and matches', () => {
  it.each([
    ['region=eu', eu, true],
    ['region==eu', eu, true],
    ['region=eu', us, false],
    ['region!=eu', us, true],
    ['tier!=canary', us, true],
    ['tier!=canary', eu, false],
    ['tier', eu, true],
    ['tier', us, false],
    ['!tier', us, true],
    ['!tier', eu, false],
    ['region=eu,tier=canary', eu, true],
    ['region=eu, tier=stable', eu, false],
    ['example.com/team=core', { 'example.com/team': 'core' }, true],
    ['region=', { region: '' }, true],
  ])('%s on %j: %s', (text, labels, want) => {
    expect(matches(parseSelector(text), labels)).toBe(want);
  });

  it.each([
    ['', 'empty selector term'],
    ['region=eu,', 'empty selector term'],
    ['=eu', 'is not a label key'],
    ['region=e u', 'is not a label value'],
    ['!', 'not a label key'],
  ])('%j is refused: %s', (text, message) => {
    expect(() => parseSelector(text)).toThrow(SelectorError);
    expect(() => parseSelector(text)).toThrow(message);
  });

  it('several selectors are alternatives; none selects every host', () => {
    const any = [parseSelector('region=us'), parseSelector('tier=canary')];
    expect(matchesAny(any, eu)).toBe(true);
    expect(matchesAny(any, us)).toBe(true);
    expect(matchesAny(any, { region: 'ap' })).toBe(false);
    expect(matchesAny([], {})).toBe(true);
  });
});
