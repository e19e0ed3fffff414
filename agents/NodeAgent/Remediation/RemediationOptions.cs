using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Remediation.Drain;

namespace Toolforge.Agents.NodeAgent.Remediation;

public sealed class RemediationOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Remediation";

    /// <summary>Restart kubelet over D-Bus when its checks failed for <see cref="UnitRemediation.FailingFor"/>. Off by default.</summary>
    public UnitRemediation Kubelet { get; set; } = new();

    public UnitRemediation Docker { get; set; } = new();

    /// <summary>Cordon and drain through the Eviction API (Drain/). Off by default.</summary>
    public DrainOptions Drain { get; set; } = new();

    public IEnumerable<string> Validate(string section) =>
        Kubelet.Validate(Check.Key(section, nameof(Kubelet))).Concat(Docker.Validate(Check.Key(section, nameof(Docker))))
            .Concat(Drain.Validate(Check.Key(section, nameof(Drain))));
}
