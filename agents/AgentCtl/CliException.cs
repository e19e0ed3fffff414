namespace Toolforge.Agents.AgentCtl;

/// <summary>An error to show as one line, exit code 1.</summary>
internal sealed class CliException(string message) : Exception(message);
