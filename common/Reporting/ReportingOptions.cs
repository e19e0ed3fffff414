using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Common.Reporting;

/// <summary>The "Coordinator" section of an agent's configuration: where and as whom it reports.</summary>
public sealed class ReportingOptions : IValidatedOptions
{
    public const string Section = "Coordinator";

    /// <summary>
    /// https://host:port of the coordinator (one haproxy address, or several instances separated by commas, tried in
    /// turn when one is unreachable). Empty: the agent runs without reporting (checks still log and export metrics).
    /// </summary>
    public string Address { get; set; } = string.Empty;

    /// <summary>More coordinator instances, as a list (joined with those in <see cref="Address"/>).</summary>
    public List<string> Addresses { get; set; } = [];

    /// <summary>Every address, in the order configured.</summary>
    public IReadOnlyList<string> AllAddresses =>
        [.. Address.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Concat(Addresses.Select(a => a.Trim())).Where(a => a.Length > 0).Distinct(StringComparer.Ordinal)];

    /// <summary>This host's name as the coordinator knows it. Empty: the identity in <see cref="Certificate"/>.</summary>
    public string Node { get; set; } = string.Empty;

    /// <summary>The host's client certificate (puppet: /var/lib/puppet/ssl/certs/FQDN.pem).</summary>
    public string Certificate { get; set; } = string.Empty;

    /// <summary>Its private key (puppet: /var/lib/puppet/ssl/private_keys/FQDN.pem).</summary>
    public string Key { get; set; } = string.Empty;

    /// <summary>The CA bundle the coordinator's certificate must chain to (puppet: /var/lib/puppet/ssl/certs/ca.pem).</summary>
    public string CaBundle { get; set; } = string.Empty;

    /// <summary>Deadline of each call to the coordinator.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Heartbeat used until the coordinator names one.</summary>
    public TimeSpan InitialInterval { get; set; } = TimeSpan.FromSeconds(30);

    public bool Enabled => AllAddresses.Count > 0;

    public IEnumerable<string> Validate(string section)
    {
        if (!Enabled)
        {
            yield break;
        }

        foreach (var address in AllAddresses)
        {
            if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme != "https")
            {
                yield return $"{Check.Key(section, nameof(Address))}: each address must be an https:// URL such as https://coordinator.example:9500 (got \"{address}\")";
            }
        }

        foreach (var p in Check.CertificateAndKey(section, nameof(Certificate), Certificate, nameof(Key), Key)
            .Concat(Check.CaBundle(section, nameof(CaBundle), CaBundle))
            .Concat(Check.Positive(section, nameof(CallTimeout), CallTimeout))
            .Concat(Check.Positive(section, nameof(InitialInterval), InitialInterval)))
        {
            yield return p;
        }
    }
}
