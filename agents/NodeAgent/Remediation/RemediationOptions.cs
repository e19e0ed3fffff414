using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Remediation;

public sealed class RemediationOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Remediation";

    /// <summary>Restart kubelet over D-Bus when its checks failed for <see cref="UnitRemediation.FailingFor"/>. Off by default.</summary>
    public UnitRemediation Kubelet { get; set; } = new();

    public UnitRemediation Docker { get; set; } = new();

    public IEnumerable<string> Validate(string section) =>
        Kubelet.Validate(Check.Key(section, nameof(Kubelet))).Concat(Docker.Validate(Check.Key(section, nameof(Docker))));
}
