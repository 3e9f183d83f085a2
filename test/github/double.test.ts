// The GitHub double is strict: it serves octokit, and refuses what GitHub's description refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Octokit } from 'octokit';
import { GitHubDouble } from './double.js';

const gh = new GitHubDouble();
let octokit: Octokit;
beforeAll(async () => {
  octokit = new Octokit({ baseUrl: await gh.start(), auth: gh.token });
});
afterAll(() => gh.stop());

describe('GitHubDouble', () => {
  it('serves what the controller uses, through octokit', async () => {
    gh.openPull(1, 'a'.repeat(40), 'feature');
    const pulls = await octokit.rest.pulls.list({ owner: 'acme', repo: 'hosts', state: 'open' });
    expect(pulls.data.map((p) => p.number)).toEqual([1]);
    const c = await octokit.rest.issues.createComment({ owner: 'acme', repo: 'hosts', issue_number: 1, body: 'hi' });
    await octokit.rest.issues.updateComment({ owner: 'acme', repo: 'hosts', comment_id: c.data.id, body: 'edited' });
    expect(gh.commentsOn(1)).toMatchObject([{ body: 'edited', updates: 1 }]);
    await octokit.rest.repos.createCommitStatus({
      owner: 'acme',
      repo: 'hosts',
      sha: 'a'.repeat(40),
      state: 'success',
      context: 'natsfleet/h1',
    });
    expect(gh.latestStatus('a'.repeat(40), 'natsfleet/h1')?.state).toBe('success');
    expect(gh.violations).toEqual([]);
  });

  it('refuses requests GitHub would refuse, and records them', async () => {
    await expect(
      octokit.request('POST /repos/{owner}/{repo}/statuses/{sha}', {
        owner: 'acme',
        repo: 'hosts',
        sha: 'abc',
        state: 'green' as 'success',
      }),
    ).rejects.toMatchObject({ status: 422 });
    await expect(
      octokit.request('POST /repos/{owner}/{repo}/issues', { owner: 'acme', repo: 'hosts' } as never),
    ).rejects.toMatchObject({ status: 422 });
    await expect(
      octokit.request('GET /repos/{owner}/{repo}/no-such-thing', { owner: 'acme', repo: 'hosts' }),
    ).rejects.toMatchObject({ status: 404 });
    await expect(
      new Octokit({ baseUrl: gh.url, auth: 'wrong' }).rest.pulls.list({ owner: 'acme', repo: 'hosts' }),
    ).rejects.toMatchObject({ status: 401 });
    expect(gh.violations).toHaveLength(4);
    expect(gh.violations[0]).toMatch(/POST \/repos\/acme\/hosts\/statuses\/abc: invalid request:.*enum/);
    gh.violations.length = 0;
  });
});
