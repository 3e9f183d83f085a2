// Owns `natsfleet revert REV`: rollback the Git way. In a local clone of the hosts repository, REV's
// manifest changes are reversed onto the base branch's tip as a new commit, pushed as the branch
// natsfleet/revert-<short>, and proposed as a pull request on GitHub, which natsfleet plans like any other;
// merging it deploys it, so a host is never rolled back behind Git's back (argo-cd#5351). Everything that
// can refuse (GitHub settings, the revision, conflicts, an existing branch) is checked before the push.
import type { Command } from 'commander';
import { githubRepositoryOf, revertBody, revertTitle, RevertError } from '../source/revert-plan.js';
import { shortRev } from '../util/rev.js';
import { userMessage } from './errors.js';

interface Flags {
  repo: string;
  remote: string;
  base: string;
  hostsDir: string;
  githubRepository?: string;
  githubApiUrl?: string;
}

const OWNER_NAME = /^[\w.-]+\/[\w.-]+$/;

export function revertCommand(
  program: Command,
  out: (l: string) => void,
  err: (l: string) => void,
  setCode: (c: number) => void,
) {
  program
    .command('revert')
    .description(
      "open a pull request that reverts a revision's manifest changes (planned like any other; merging deploys it)",
    )
    .argument('<rev>', 'the revision to revert (a commit on the base branch)')
    .option('--repo <dir>', 'a local clone of the hosts repository', '.')
    .option('--remote <name>', 'the remote the base branch is fetched from and the branch pushed to', 'origin')
    .option('--base <branch>', 'the branch the revision is on, and the pull request targets', 'main')
    .option('--hosts-dir <dir>', 'manifests directory in the repository: only changes under it are reverted', 'hosts')
    .option(
      '--github-repository <owner/name>',
      'where to open the pull request (default: $NATSFLEET_GITHUB_REPOSITORY, else the github.com remote)',
    )
    .option('--github-api-url <url>', 'GitHub API base URL (default: $NATSFLEET_GITHUB_API_URL, else github.com)')
    .action(async (rev: string, f: Flags) => {
      // Loaded by this command only (octokit, simple-git): the others start without them.
      const [{ makeOctokit, GitHubReporter }, { prepareRevert, pushRevert, remoteUrl }] = await Promise.all([
        import('../report/github.js'),
        import('../source/revert.js'),
      ]);
      const env = process.env;
      const fail = (message: string) => {
        err(`error: ${message}`);
        setCode(1);
      };
      // git reads an argument that starts with `-` as an option (`--upload-pack=CMD` runs CMD): refused.
      for (const [flag, value] of [
        ['--remote', f.remote],
        ['--base', f.base],
      ] as const)
        if (value.startsWith('-')) return fail(`${flag} ${value}: must not start with -`);
      const token = env.GITHUB_TOKEN || env.NATSFLEET_GITHUB_TOKEN;
      if (!token) return fail('GITHUB_TOKEN is not set: natsfleet revert opens a pull request with it');
      const repository =
        f.githubRepository ??
        env.NATSFLEET_GITHUB_REPOSITORY ??
        githubRepositoryOf((await remoteUrl(f.repo, f.remote).catch(() => undefined)) ?? '');
      if (!repository)
        return fail(`cannot tell the GitHub repository from remote ${f.remote}: pass --github-repository OWNER/NAME`);
      if (!OWNER_NAME.test(repository)) return fail(`--github-repository ${repository}: expected OWNER/NAME`);
      const apiUrl = f.githubApiUrl ?? env.NATSFLEET_GITHUB_API_URL;
      try {
        const p = await prepareRevert({ repo: f.repo, rev, remote: f.remote, base: f.base, hostsDir: f.hostsDir });
        out(`reverting ${shortRev(p.sha)} (${p.subject}) on ${f.base}: ${p.paths.join(', ')}`);
        if (p.kept.length) out(`  kept (outside ${f.hostsDir}/): ${p.kept.join(', ')}`);
        await pushRevert(f.repo, f.remote, p);
        out(`pushed ${p.branch} (${shortRev(p.commit)}) to ${f.remote}`);
        const client = await makeOctokit({ repository, token, apiUrl });
        const github = new GitHubReporter(client.octokit, repository, client.whoAmI);
        const text = { ...p, base: f.base, hostsDir: f.hostsDir };
        let pr: { number: number; url: string };
        try {
          pr = await github.openPull(p.branch, f.base, revertTitle(p.sha, p.subject), revertBody(text));
        } catch (e) {
          return fail(
            `${p.branch} is pushed, but opening its pull request on ${repository} failed: ${userMessage(e)} ` +
              '(open it by hand, or delete the branch and run natsfleet revert again)',
          );
        }
        out(`opened pull request #${pr.number}: ${pr.url}`);
        out('natsfleet plans it like any other pull request; merging it deploys the revert.');
        setCode(0);
      } catch (e) {
        if (e instanceof RevertError) return fail(e.message);
        throw e;
      }
    });
}
