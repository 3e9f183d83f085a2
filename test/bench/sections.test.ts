// bench/RESULTS.md is rewritten one scenario at a time: a scenario's sections replace the sections of
// the same headings, wherever they are, and every other section stays as it was, in its order.
import { describe, expect, it } from 'vitest';
import { PREAMBLE, mergeSections, sectionKey, splitSections } from '../../bench/sections.js';

const OLD = `# natsfleet benchmarks

hosts table

## One host

old one host

## No-op drift sweep of 1000 hosts (simulated)

old sweep

\`\`\`
## not a heading (in a code block)
\`\`\`

## Rolling upgrade of a 3-member JetStream cluster (nats:2.9.10 -> nats:2.10.27)

old cluster
`;

describe('RESULTS.md sections', () => {
  it('keys a heading without its numbers and parenthesised details', () => {
    expect(sectionKey('## No-op drift sweep of 10,000 hosts (simulated)')).toBe(
      sectionKey('## No-op drift sweep of 1000 hosts (simulated, cold)'),
    );
    expect(splitSections(OLD).map((s) => s.key)).toEqual([
      PREAMBLE,
      '## One host',
      '## No-op drift sweep of N hosts',
      '## Rolling upgrade of a N-member JetStream cluster',
    ]);
  });

  it('replaces only the sections of the fresh text, in place', () => {
    const md = mergeSections(OLD, '## No-op drift sweep of 10000 hosts (simulated)\n\nnew sweep\n');
    expect(md).toContain('old one host');
    expect(md).toContain('new sweep');
    expect(md).not.toContain('old sweep');
    expect(md).not.toContain('## not a heading');
    expect(md.indexOf('new sweep')).toBeLessThan(md.indexOf('old cluster'));
    expect(md.endsWith('old cluster\n')).toBe(true);
  });

  it('puts a new preamble first, appends a new section at the end, keeps unknown ones', () => {
    const md = mergeSections(OLD, '# natsfleet benchmarks\n\nnew table\n\n## One host\n\nnew one host\n');
    expect(splitSections(md).map((s) => s.text.split('\n').at(-1))).toEqual([
      'new table',
      'new one host',
      '```',
      'old cluster',
    ]);
    const added = mergeSections(OLD, '## CLI start-up\n\nfast\n');
    expect(added.startsWith('# natsfleet benchmarks\n\nhosts table\n')).toBe(true);
    expect(added.endsWith('old cluster\n\n## CLI start-up\n\nfast\n')).toBe(true);
    expect(mergeSections('', '## CLI start-up\n\nfast')).toBe('## CLI start-up\n\nfast\n');
  });
});
