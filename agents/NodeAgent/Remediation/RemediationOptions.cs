using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Remediation.Drain;
using Toolforge.Agents.NodeAgent.Remediation.Ladder;

namespace Toolforge.Agents.NodeAgent.Remediation;

public sealed class RemediationOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Remediation";

    /// <summary>Restart kubelet over D-Bus when its checks failed for <see cref="UnitRemediation.FailingFor"/>. Off by default.</summary>
    public UnitRemediation Kubelet { get; set; } = new();

    public UnitRemediation Docker { get; set; } = new();

    /// <summary>Cordon and drain through the Eviction API (Drain/). Off by default.</summary>
    public DrainOptions Drain { get; set; } = new();

    /// <summary>The incident ladder (Ladder/): restart → cordon and drain → reboot → hard reset → uncordon once healthy. Off by default.</summary>
    public LadderOptions Ladder { get; set; } = new();

    public IEnumerable<string> Validate(string section) =>
        Kubelet.Validate(Check.Key(section, nameof(Kubelet))).Concat(Docker.Validate(Check.Key(section, nameof(Docker))))
            .Concat(Drain.Validate(Check.Key(section, nameof(Drain))))
            .Concat(Ladder.Validate(Check.Key(section, nameof(Ladder))))
            .Concat(Ladder.Enabled && !Drain.Enabled ? [$"{Check.Key(section, "Ladder:Enabled")}: needs {Check.Key(section, "Drain:Enabled")} true (the ladder drains through it)"] : []);
}
