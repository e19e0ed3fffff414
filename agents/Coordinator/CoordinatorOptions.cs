using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator;

/// <summary>
/// What several of the coordinator's features share in the "Coordinator" section of
/// /etc/toolforge-agents/coordinator.json: where it listens (Kestrel in Hosting/, haproxy's agent check in Cluster/).
/// Each feature takes its own keys of the same section through its own options type (Security/SecurityOptions,
/// Storage/StorageOptions, State/StateOptions, Remediation/RemediationOptions below "Coordinator:Remediation");
/// the keys in the file are one flat section, as they always were.
/// </summary>
public sealed class CoordinatorOptions : IValidatedOptions
{
    public const string Section = "Coordinator";

    /// <summary>Address Kestrel listens on (HTTP/2 over TLS only).</summary>
    public string ListenAddress { get; set; } = "0.0.0.0";

    public int Port { get; set; } = 9500;

    /// <summary>Port (on ListenAddress) answering haproxy's agent check with "up"/"down"; 0: off.</summary>
    public int HealthAgentPort { get; set; }

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        problems.AddRange(Check.Port(section, nameof(Port), Port, allowZero: true)); // 0: any free port (tests)
        problems.AddRange(Check.Port(section, nameof(HealthAgentPort), HealthAgentPort, allowZero: true));
        if (HealthAgentPort != 0 && HealthAgentPort == Port)
        {
            problems.Add($"{Check.Key(section, nameof(HealthAgentPort))}: must differ from {nameof(Port)}");
        }

        if (!System.Net.IPAddress.TryParse(ListenAddress, out _))
        {
            problems.Add($"{Check.Key(section, nameof(ListenAddress))}: must be an IP address (got \"{ListenAddress}\")");
        }

        return problems;
    }
}
