// ensureComment finds its comment by marker only among natsfleet's own: a marker someone else posted is
// never edited, never trusted (against the GitHub double, which says who wrote each comment).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Octokit } from 'octokit';
import { GitHubDouble } from '../github/double.js';
import { GitHubReporter } from '../../controller/report/github.js';
import { PLAN_MARKER } from '../../controller/report/markdown.js';

const gh = new GitHubDouble();
let reporter: GitHubReporter;
beforeAll(async () => {
  reporter = new GitHubReporter(new Octokit({ baseUrl: await gh.start(), auth: gh.token }), gh.repository);
});
afterAll(() => gh.stop());

describe('ensureComment', () => {
  it('a marker squatted by another user is left alone: natsfleet posts and then edits its own', async () => {
    gh.openPull(7, 'b'.repeat(40), 'feature');
    const squat = gh.postComment(7, `looks fine to me ${PLAN_MARKER}`, 'mallory');
    const id = await reporter.ensureComment(7, PLAN_MARKER, 'plan v1');
    expect(id).not.toBe(squat.id);
    expect(squat.body).toBe(`looks fine to me ${PLAN_MARKER}`);
    expect(squat.updates).toBe(0);
    // Found again by marker (no id known): its own comment, edited in place.
    expect(await reporter.ensureComment(7, PLAN_MARKER, 'plan v2')).toBe(id);
    // Given the squatter's id: not trusted either.
    expect(await reporter.ensureComment(7, PLAN_MARKER, 'plan v3', squat.id)).toBe(id);
    expect(gh.commentsOn(7).map((c) => [c.author ?? 'natsfleet', c.body.split('\n')[0]])).toEqual([
      ['mallory', `looks fine to me ${PLAN_MARKER}`],
      ['natsfleet', 'plan v3'],
    ]);
    expect(gh.violations).toEqual([]);
  });
});
