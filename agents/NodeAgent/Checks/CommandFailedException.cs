using Toolforge.Agents.Common.Checks;

namespace Toolforge.Agents.NodeAgent.Checks;

/// <summary>A program the agent runs (iptables-save, nft, conntrack) could not be run or exited non-zero: expected, named, no trace.</summary>
public sealed class CommandFailedException(string command, int? exitCode, string stderr, Exception? inner = null)
    : PeerUnavailableException(command, exitCode is { } c ? $"{command} exited with {c}: {Cut(stderr.Trim())}" : $"cannot run {command}: {stderr}", inner)
{
    public int? ExitCode { get; } = exitCode;

    public string Stderr { get; } = stderr;

    private static string Cut(string s) => s.Length <= 300 ? s : s[..300] + "…";
}
