namespace Toolforge.Agents.AgentCtl;

/// <summary>The connection flags as given (each may be null: the config file fills it in).</summary>
internal sealed record GlobalSettings(string? Server, string? Cert, string? Key, string? Ca, string? ConfigPath, TimeSpan Timeout);
