// The GitHub double is strict: it serves octokit, refuses what GitHub's description refuses, answers
// only what the description allows (its own wrong answers are caught), and is a GitHub App's GitHub.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Octokit } from 'octokit';
import { GitHubDouble } from './double.js';
import { makeOctokit } from '../../controller/report/github.js';

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

describe('GitHubDouble answers', () => {
  const r = { owner: 'acme', repo: 'hosts' };
  const sha = 'b'.repeat(40);

  // Each operation's response schemas are compiled on its first answer: seconds for the large ones.
  it('every answer it gives matches the description, errors included', { timeout: 60_000 }, async () => {
    gh.openPull(2, sha, 'topic', 'someone/hosts');
    gh.mergePull(2, 'c'.repeat(40));
    await octokit.rest.pulls.list({ ...r, state: 'all' });
    await octokit.rest.repos.listPullRequestsAssociatedWithCommit({ ...r, commit_sha: 'c'.repeat(40) });
    await octokit.rest.users.getAuthenticated();
    const c = await octokit.rest.issues.createComment({ ...r, issue_number: 2, body: 'x' });
    await octokit.rest.issues.getComment({ ...r, comment_id: c.data.id });
    await octokit.rest.issues.listComments({ ...r, issue_number: 2 });
    await expect(octokit.rest.issues.getComment({ ...r, comment_id: 1 })).rejects.toMatchObject({ status: 404 });
    await octokit.rest.repos.createCommitStatus({ ...r, sha, state: 'failure', context: 'natsfleet' });
    await octokit.rest.repos.listCommitStatusesForRef({ ...r, ref: sha });
    const i = await octokit.rest.issues.create({ ...r, title: 't', body: 'b', labels: ['natsfleet:drift'] });
    await octokit.rest.issues.listForRepo({ ...r, labels: 'natsfleet:drift', state: 'open' });
    await octokit.rest.issues.update({ ...r, issue_number: i.data.number, state: 'closed', state_reason: 'completed' });
    expect(gh.violations).toEqual([]);
  });

  it('catches an answer of its own that GitHub would not give', async () => {
    gh.overrides.set('users/get-authenticated', () => ({ status: 200, body: { login: 42 } }));
    await octokit.rest.users.getAuthenticated();
    gh.overrides.set('users/get-authenticated', () => ({ status: 404, body: { message: 'Not Found' } }));
    await expect(octokit.rest.users.getAuthenticated()).rejects.toMatchObject({ status: 404 });
    gh.overrides.clear();
    expect(gh.violations).toHaveLength(2);
    expect(gh.violations[0]).toMatch(/^GET \/user: invalid response 200: .*must have required property/);
    expect(gh.violations[1]).toBe('GET /user: response 404 is not documented for users/get-authenticated');
    gh.violations.length = 0;
  });
});

describe('GitHubDouble as a GitHub App', () => {
  const app = new GitHubDouble();
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const r = { owner: 'acme', repo: 'hosts' };
  const sha = 'd'.repeat(40);
  beforeAll(async () => {
    await app.start();
    app.enableApp({ appId: 7, slug: 'natsfleet', publicKey: keys.publicKey, installationId: 42 });
  });
  afterAll(() => app.stop());

  it("serves octokit's App client: its JWT, an installation token, the checks API", { timeout: 60_000 }, async () => {
    const client = await makeOctokit({
      repository: 'acme/hosts',
      apiUrl: app.url,
      app: { appId: 7, privateKey, installationId: 42 },
    });
    expect(client.app).toEqual({ id: 7 });
    expect(await client.whoAmI()).toBe('natsfleet[bot]');
    const created = await client.octokit.rest.checks.create({
      ...r,
      name: 'natsfleet',
      head_sha: sha,
      status: 'completed',
      conclusion: 'success',
      output: {
        title: 't',
        summary: 's',
        annotations: [{ path: 'hosts/a.yaml', start_line: 4, end_line: 4, annotation_level: 'notice', message: 'm' }],
      },
    });
    await client.octokit.rest.checks.update({
      ...r,
      check_run_id: created.data.id,
      output: { title: 't', summary: 's2' },
    });
    const listed = await client.octokit.rest.checks.listForRef({ ...r, ref: sha, check_name: 'natsfleet' });
    expect(listed.data.check_runs.map((c) => [c.id, c.output.summary, c.output.annotations_count])).toEqual([
      [created.data.id, 's2', 1],
    ]);
    const notes = await client.octokit.rest.checks.listAnnotations({ ...r, check_run_id: created.data.id });
    expect(notes.data.map((a) => [a.path, a.start_line])).toEqual([['hosts/a.yaml', 4]]);
    expect(app.installationTokens).toHaveLength(1);
    expect(app.violations).toEqual([]);
  });

  it('refuses a JWT signed by another key, more than 50 annotations, and the checks API to a token', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    const impostor = await makeOctokit({
      repository: 'acme/hosts',
      apiUrl: app.url,
      app: { appId: 7, privateKey: other.toString(), installationId: 42 },
    });
    await expect(impostor.octokit.rest.checks.listForRef({ ...r, ref: sha })).rejects.toMatchObject({ status: 401 });
    const client = await makeOctokit({
      repository: 'acme/hosts',
      apiUrl: app.url,
      app: { appId: 7, privateKey, installationId: 42 },
    });
    const note = {
      path: 'hosts/a.yaml',
      start_line: 1,
      end_line: 1,
      annotation_level: 'notice' as const,
      message: 'm',
    };
    await expect(
      client.octokit.rest.checks.create({
        ...r,
        name: 'natsfleet',
        head_sha: sha,
        output: { title: 't', summary: 's', annotations: Array(51).fill(note) },
      }),
    ).rejects.toMatchObject({ status: 422 });
    const token = new Octokit({ baseUrl: app.url, auth: app.token });
    await expect(token.rest.checks.listForRef({ ...r, ref: sha })).rejects.toMatchObject({ status: 403 });
    expect(app.violations).toHaveLength(3);
    expect(app.violations[0]).toMatch(/^POST \/app\/installations\/42\/access_tokens: JWT signature does not verify/);
    expect(app.violations[1]).toMatch(/^POST \/repos\/acme\/hosts\/check-runs: invalid request:.*maxItems/);
    expect(app.violations[2]).toMatch(/check-runs: the checks API is for GitHub Apps \(installation tokens\) only$/);
    app.violations.length = 0;
  });
});
