using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

/// <summary>NodeAgent:Kubernetes:Conditions: the agent's problems on its own Node (conditions) and as Events.</summary>
public sealed class NodeConditionsOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Kubernetes:Conditions";

    /// <summary>Off by default: turning it on makes the agent a writer of the Node's status.</summary>
    public bool Enabled { get; set; }

    /// <summary>Condition type per problem family (see <see cref="ConditionFamilies"/>); "" turns a family off. Unnamed families keep their default.</summary>
    public Dictionary<string, string> Types { get; set; } = [];

    /// <summary>Put before every condition type (e.g. "Toolforge"), so the agent's types can never meet another writer's.</summary>
    public string Prefix { get; set; } = string.Empty;

    /// <summary>How often each condition's lastHeartbeatTime is refreshed (its message too) when nothing changed.</summary>
    public TimeSpan HeartbeatPeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often the checks are looked at for a changed status.</summary>
    public TimeSpan EvaluateInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Write temporary problems (OOM kills, remediation restarts, journal rule events) as core/v1 Events.</summary>
    public bool Events { get; set; } = true;

    /// <summary>The namespace of the Events (the kubelet writes node events to default).</summary>
    public string EventNamespace { get; set; } = "default";

    /// <summary>Events of one reason within this window are one Event whose count grows.</summary>
    public TimeSpan EventAggregateWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How often a growing Event's count is written (the first of a series is written at once).</summary>
    public TimeSpan EventFlushInterval { get; set; } = TimeSpan.FromSeconds(10);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Positive(section, nameof(HeartbeatPeriod), HeartbeatPeriod));
        p.AddRange(Check.Positive(section, nameof(EvaluateInterval), EvaluateInterval));
        p.AddRange(Check.Positive(section, nameof(EventAggregateWindow), EventAggregateWindow));
        p.AddRange(Check.Positive(section, nameof(EventFlushInterval), EventFlushInterval));
        p.AddRange(Check.Required(section, nameof(EventNamespace), EventNamespace));
        foreach (var (family, type) in Types)
        {
            if (!ConditionFamilies.All.Any(f => f.Key == family))
            {
                p.Add($"{Check.Key(section, $"{nameof(Types)}:{family}")}: no such problem family (families: {string.Join(", ", ConditionFamilies.All.Select(f => f.Key))})");
            }
            else if (type.Length > 0 && !ConditionFamilies.IsTypeName(Prefix + type))
            {
                p.Add($"{Check.Key(section, $"{nameof(Types)}:{family}")}: \"{Prefix + type}\" is not a condition type (letters and digits, starting with a capital, at most 63)");
            }
        }

        if (Prefix.Length > 0 && !ConditionFamilies.IsTypeName(Prefix + "X"))
        {
            p.Add($"{Check.Key(section, nameof(Prefix))}: \"{Prefix}\" must be letters and digits starting with a capital");
        }

        return p;
    }
}
