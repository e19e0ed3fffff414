namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>
/// A git command that failed, or a checkout the builder refuses to build from (dirty, diverged): one line for an
/// admin, naming the checkout and what to do. Repository strings in it are bounded and escaped.
/// </summary>
public sealed class GitException(string message, bool badInput = false) : Exception(message)
{
    /// <summary>The caller's input was wrong (a --since naming no commit), not the checkout or the remote.</summary>
    public bool BadInput { get; } = badInput;
}
