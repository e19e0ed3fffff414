using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Contracts;

/// <summary>
/// The words for the contract's enums, in one place: what logs, metrics labels, agentctl's tables and its --state
/// flag all use, and agentctl's JSON and YAML too (<see cref="InTableWords"/>: "failing", never NODE_STATE_FAILING).
/// </summary>
public static class ContractNames
{
    /// <summary>
    /// The response header the coordinator sends as soon as it opens a builder's command stream (a refusal has none):
    /// the builder is connected from then on, not only once a command comes.
    /// </summary>
    public const string CommandsOpenHeader = "toolforge-commands";

    /// <summary>
    /// The trailer of a RESOURCE_EXHAUSTED answer saying how many milliseconds to wait before sending again (the name
    /// gRPC's retry design, A6, gives a server's pushback).
    /// </summary>
    public const string RetryPushbackTrailer = "grpc-retry-pushback-ms";

    /// <summary>
    /// The node-agent's check that says a remediation hold is on its node (warning) — reported by the ladder, read by
    /// the coordinator for `agentctl remediation status`: one name for both sides.
    /// </summary>
    public const string RemediationHoldCheck = "remediation.hold";

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
        BuildState.Cancelled => "cancelled",
        _ => "-",
    };

    public static string Name(this Severity s) => s switch
    {
        Severity.Info => "info",
        Severity.Warning => "warning",
        Severity.Error => "error",
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

    /// <summary>A severity from its word (info, warning, error), or null.</summary>
    public static Severity? ParseSeverity(string word) =>
        Enum.GetValues<Severity>().Where(s => s != Severity.Unspecified).Cast<Severity?>()
            .FirstOrDefault(s => string.Equals(s!.Value.Name(), word, StringComparison.OrdinalIgnoreCase));

    /// <summary>An agent kind from its word (node-agent or node, builder-agent or builder, log-shipper or shipper), or null.</summary>
    public static AgentKind? ParseAgentKind(string word) =>
        Enum.GetValues<AgentKind>().Where(k => k != AgentKind.Unspecified).Cast<AgentKind?>()
            .FirstOrDefault(k => string.Equals(k!.Value.Name(), word, StringComparison.OrdinalIgnoreCase) || string.Equals(k.Value.ShortName(), word, StringComparison.OrdinalIgnoreCase));

    // protobuf's names of every enum value (from the contract's descriptor, which a NativeAOT binary keeps) to our words.
    private static readonly Dictionary<string, string> Words = BuildWords();

    private static Dictionary<string, string> BuildWords()
    {
        var words = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in AgentsReflection.Descriptor.EnumTypes)
        {
            foreach (var v in e.Values)
            {
                var word = e.Name switch
                {
                    nameof(NodeState) => ((NodeState)v.Number).Name(),
                    nameof(CheckState) => ((CheckState)v.Number).Name(),
                    nameof(Severity) => ((Severity)v.Number).Name(),
                    nameof(BuildState) => ((BuildState)v.Number).Name(),
                    nameof(AgentKind) => ((AgentKind)v.Number).Name(),
                    _ => null,
                };
                if (word is not null && v.Number != 0)
                {
                    words[v.Name] = word;
                }
            }
        }

        return words;
    }

    // The JSON fields that hold the contract's enums (NodeSummary.state, CheckResult.state, Finding.severity and agent,
    // AgentInfo.kind, Build.state): only these are rewritten, never a message or a subject that happens to read
    // NODE_STATE_OK.
    private static readonly HashSet<string> EnumFields = new(StringComparer.Ordinal) { "state", "severity", "kind", "agent" };

    /// <summary>
    /// protobuf's JSON with every enum value in the words the tables use (NODE_STATE_FAILING → failing, SEVERITY_ERROR →
    /// error, AGENT_KIND_NODE → node-agent): one vocabulary for people and scripts. Changes <paramref name="node"/> in place.
    /// </summary>
    public static System.Text.Json.Nodes.JsonNode? InTableWords(System.Text.Json.Nodes.JsonNode? node)
    {
        switch (node)
        {
            case System.Text.Json.Nodes.JsonObject o:
                foreach (var (key, value) in o.ToList())
                {
                    if (EnumFields.Contains(key) && value is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<string>(out var s) && Words.TryGetValue(s, out var word))
                    {
                        o[key] = word;
                    }
                    else
                    {
                        InTableWords(value);
                    }
                }

                break;
            case System.Text.Json.Nodes.JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    InTableWords(a[i]);
                }

                break;
            default:
                break;
        }

        return node;
    }
}
