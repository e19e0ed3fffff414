using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Cri;

/// <summary>The CRI runtime (NodeAgent:Cri): containerd by default, any CRI runtime by its socket.</summary>
public sealed class CriOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Cri";

    public string Endpoint { get; set; } = "unix:///run/containerd/containerd.sock";

    /// <summary>The runtime's name in check names: runtime.NAME and NAME.unit.</summary>
    public string Name { get; set; } = "containerd";

    /// <summary>Its systemd unit, read over D-Bus like docker.service.</summary>
    public string Unit { get; set; } = "containerd.service";

    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Deadline of Version and Status: a runtime that accepts the connection and does not answer in time is "hung".</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Deadline of the sandbox and container listings (and of each container's status in the tenant audit).</summary>
    public TimeSpan ListTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        if (!Endpoint.StartsWith("unix:///", StringComparison.Ordinal))
        {
            p.Add($"{Check.Key(section, nameof(Endpoint))}: must be unix:///path/to/the.sock (got \"{Endpoint}\")");
        }

        if (Name.Length == 0 || !Name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
        {
            p.Add($"{Check.Key(section, nameof(Name))}: lower-case letters, digits and '-' (it names the checks; got \"{Name}\")");
        }

        p.AddRange(Check.Required(section, nameof(Unit), Unit));
        p.AddRange(Check.Positive(section, nameof(Interval), Interval));
        p.AddRange(Check.Positive(section, nameof(CallTimeout), CallTimeout));
        p.AddRange(Check.Positive(section, nameof(ListTimeout), ListTimeout));
        return p;
    }
}
