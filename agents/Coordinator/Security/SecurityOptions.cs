using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// The security keys of the "Coordinator" section: the coordinator's TLS pair, the CA its callers' certificates must
/// chain to, the roles bound to certificate identities, the deny-list and the report rate. A reload (SIGHUP) re-reads
/// these only (<see cref="PolicyProvider"/>).
/// </summary>
public sealed class SecurityOptions : IValidatedOptions
{
    public const string Section = CoordinatorOptions.Section;

    /// <summary>The coordinator's own certificate (puppet: /var/lib/puppet/ssl/certs/FQDN.pem).</summary>
    public string Certificate { get; set; } = string.Empty;

    /// <summary>Its key (puppet: /var/lib/puppet/ssl/private_keys/FQDN.pem).</summary>
    public string Key { get; set; } = string.Empty;

    /// <summary>Client certificates must chain to this bundle (puppet: /var/lib/puppet/ssl/certs/ca.pem).</summary>
    public string CaBundle { get; set; } = string.Empty;

    /// <summary>Revoked client certificates: serial numbers (hex), SHA-256 fingerprints (hex) or identities.</summary>
    public List<string> DeniedCertificates { get; set; } = [];

    /// <summary>Identities (certificate DNS SAN or CN) that may read and act (request builds).</summary>
    public List<string> Admins { get; set; } = [];

    /// <summary>Identities that may only read.</summary>
    public List<string> Viewers { get; set; } = [];

    /// <summary>Identities that may act as the builder-agent (command stream, BUILDER reports, build progress). Empty: none.</summary>
    public List<string> Builders { get; set; } = [];

    /// <summary>
    /// Glob patterns ('*' within one label, '?') of identities that may report as node-agent or log-shipper, e.g.
    /// tools-k8s-*.tools.eqiad1.wikimedia.cloud. Empty: any identity that is in no other role.
    /// </summary>
    public List<string> Nodes { get; set; } = [];

    /// <summary>Report calls a second allowed per identity and agent kind (a token bucket); beyond it RESOURCE_EXHAUSTED.</summary>
    public double ReportRate { get; set; } = Common.Contracts.ReportLimits.ReportRate;

    /// <summary>How many Report calls may come at once above the rate.</summary>
    public int ReportBurst { get; set; } = Common.Contracts.ReportLimits.ReportBurst;

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        problems.AddRange(Check.CertificateAndKey(section, nameof(Certificate), Certificate, nameof(Key), Key));
        problems.AddRange(Check.CaBundle(section, nameof(CaBundle), CaBundle));
        foreach (var both in Admins.Intersect(Viewers, StringComparer.OrdinalIgnoreCase))
        {
            problems.Add($"{Check.Key(section, nameof(Viewers))}: \"{both}\" is also in Admins; list it once");
        }

        foreach (var both in Builders.Intersect(Admins.Concat(Viewers), StringComparer.OrdinalIgnoreCase))
        {
            problems.Add($"{Check.Key(section, nameof(Builders))}: \"{both}\" is also an admin or viewer; a person's certificate is not an agent's");
        }

        for (var i = 0; i < Nodes.Count; i++)
        {
            if (Nodes[i].Trim().Length == 0 || Nodes[i].Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '*' or '?')))
            {
                problems.Add($"{Check.Key(section, $"{nameof(Nodes)}:{i}")}: \"{Nodes[i]}\" is not a host name pattern (letters, digits, . - _ and the wildcards * ?)");
            }
        }

        if (ReportRate is <= 0 or > 10_000 || double.IsNaN(ReportRate))
        {
            problems.Add($"{Check.Key(section, nameof(ReportRate))}: must be more than 0 and at most 10000 reports a second (got {ReportRate})");
        }

        problems.AddRange(Check.Range(section, nameof(ReportBurst), ReportBurst, 1, 100_000));
        return problems;
    }
}
