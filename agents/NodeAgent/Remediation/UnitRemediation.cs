using System.Text.RegularExpressions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Remediation;

public sealed class UnitRemediation : IValidatedOptions
{
    public bool Enabled { get; set; }

    public TimeSpan FailingFor { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan Cooldown { get; set; } = TimeSpan.FromMinutes(30);

    public IEnumerable<string> Validate(string section) =>
        Check.Positive(section, nameof(FailingFor), FailingFor).Concat(Check.Positive(section, nameof(Cooldown), Cooldown));
}
