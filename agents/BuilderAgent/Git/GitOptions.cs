using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>
/// The "Builder:Git" section: where the image repository's commits come from. The daemon polls only when
/// <see cref="PollInterval"/> is set (off by default); the command line (`build --from-git`) uses the same keys.
/// </summary>
public sealed class GitOptions : IValidatedOptions
{
    public const string Section = "Builder:Git";

    /// <summary>The remote to fetch: a remote name of the checkout ("origin") or a URL.</summary>
    public string Remote { get; set; } = "origin";

    /// <summary>The branch of the remote that is the source of truth.</summary>
    public string Branch { get; set; } = "main";

    /// <summary>
    /// The git checkout of the image repository; empty: Builder:Repository. A directory that does not exist yet (or is
    /// empty) is cloned from <see cref="Remote"/>, then a URL, at the first poll or `build --from-git`: under the
    /// daemon's unit (/srv read-only) the one way to poll is a checkout in its state directory,
    /// /var/lib/toolforge-builder-agent/toollabs-images.
    /// </summary>
    public string Checkout { get; set; } = string.Empty;

    /// <summary>How often the daemon fetches and builds what changed; 00:00:00 (the default): never.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.Zero;

    /// <summary>Whether the daemon pushes what it built from git (the command line pushes only with --push).</summary>
    public bool Push { get; set; } = true;

    /// <summary>Deadline of each git command (a fetch over a slow link included).</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Shortest poll interval: polling a remote more often than this is a mistake, not a wish.</summary>
    public static readonly TimeSpan ShortestPoll = TimeSpan.FromSeconds(1);

    public bool Polling => PollInterval > TimeSpan.Zero;

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (GitCheckout.RemoteProblem(Remote) is { } remote)
        {
            problems.Add($"{Check.Key(section, nameof(Remote))}: {remote}");
        }

        if (GitCheckout.BranchProblem(Branch) is { } branch)
        {
            problems.Add($"{Check.Key(section, nameof(Branch))}: {branch}");
        }

        if (Checkout.Length > 0 && !Directory.Exists(Checkout))
        {
            var parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Checkout)));
            if (!Remote.Contains(':', StringComparison.Ordinal) && !Remote.Contains('/', StringComparison.Ordinal))
            {
                problems.Add($"{Check.Key(section, nameof(Checkout))}: directory {Checkout} does not exist (it is cloned only when {nameof(Remote)} is a URL)");
            }
            else if (parent is null || !Directory.Exists(parent))
            {
                problems.Add($"{Check.Key(section, nameof(Checkout))}: directory {parent} does not exist (to clone {Checkout} into)");
            }
        }

        if (PollInterval < TimeSpan.Zero || (PollInterval > TimeSpan.Zero && PollInterval < ShortestPoll) || PollInterval > Check.LongestDuration)
        {
            problems.Add($"{Check.Key(section, nameof(PollInterval))}: must be 00:00:00 (do not poll) or between 00:00:01 and {Check.LongestDuration:d\\.hh\\:mm\\:ss} (got {PollInterval})");
        }

        problems.AddRange(Check.Positive(section, nameof(CommandTimeout), CommandTimeout));
        return problems;
    }
}
