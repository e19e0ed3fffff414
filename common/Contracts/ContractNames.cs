using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Contracts;

/// <summary>
/// The words for the contract's enums, in one place: what logs, metrics labels, agentctl's tables and its --state
/// flag all use. (JSON output keeps protobuf's own names, NODE_STATE_OK and so on.)
/// </summary>
public static class ContractNames
{
    public static string Name(this CheckState s) => s switch
    {
        CheckState.Ok => "ok",
        CheckState.Warning => "warning",
        CheckState.Failing => "failing",
        CheckState.Unknown => "unknown",
        _ => "-",
    };

    public static string Name(this NodeState s) => s switch
    {
        NodeState.Ok => "ok",
        NodeState.Warning => "warning",
        NodeState.Failing => "failing",
        NodeState.Stale => "stale",
        NodeState.Missing => "missing",
        _ => "unknown",
    };

    public static string Name(this BuildState s) => s switch
    {
        BuildState.Queued => "queued",
        BuildState.Running => "running",
        BuildState.Succeeded => "succeeded",
        BuildState.Failed => "failed",
        _ => "-",
    };

    /// <summary>The program: node-agent, builder-agent, log-shipper.</summary>
    public static string Name(this AgentKind k) => k switch
    {
        AgentKind.Node => "node-agent",
        AgentKind.Builder => "builder-agent",
        AgentKind.LogShipper => "log-shipper",
        _ => "unknown-agent",
    };

    /// <summary>The short form for narrow table columns: node, builder, shipper.</summary>
    public static string ShortName(this AgentKind k) => k switch
    {
        AgentKind.Node => "node",
        AgentKind.Builder => "builder",
        AgentKind.LogShipper => "shipper",
        _ => "?",
    };

    /// <summary>A node state from its word (ok, warning, failing, stale, missing), or null.</summary>
    public static NodeState? ParseNodeState(string word) =>
        Enum.GetValues<NodeState>().Where(s => s != NodeState.Unspecified).Cast<NodeState?>()
            .FirstOrDefault(s => string.Equals(s!.Value.Name(), word, StringComparison.OrdinalIgnoreCase));
}
