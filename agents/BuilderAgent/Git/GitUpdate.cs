namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>
/// What one fetch did: the checkout's HEAD before and after the fast-forward, the commit the changes are counted
/// from (<see cref="Since"/>: --since, else the last commit built, else HEAD before the fetch) and the changed paths.
/// </summary>
public sealed record GitUpdate(string Before, string After, string Since, IReadOnlyList<string> Changed, string SourceUrl)
{
    public bool FastForwarded => Before != After;

    public static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;
}
