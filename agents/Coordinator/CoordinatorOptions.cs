using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator;

/// <summary>The "Coordinator" section of /etc/toolforge-agents/coordinator.json.</summary>
public sealed class CoordinatorOptions : IValidatedOptions
{
    public const string Section = "Coordinator";

    /// <summary>Address Kestrel listens on (HTTP/2 over TLS only).</summary>
    public string ListenAddress { get; set; } = "0.0.0.0";

    public int Port { get; set; } = 9500;

    /// <summary>Port (on ListenAddress) answering haproxy's agent check with "up"/"down"; 0: off.</summary>
    public int HealthAgentPort { get; set; }

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

    /// <summary>The storage engine: "sqlite" (one host, the file in <see cref="Database"/>) or "postgresql" (several instances).</summary>
    public string Store { get; set; } = StoreKinds.SqliteName;

    /// <summary>The engine <see cref="Store"/> names (SQLite when it names none: validation refuses that at start).</summary>
    public StoreKind Engine => StoreKinds.Parse(Store) ?? StoreKind.Sqlite;

    /// <summary>The SQLite file (Store = sqlite).</summary>
    public string Database { get; set; } = "/var/lib/toolforge-coordinator/coordinator.db";

    /// <summary>Store = postgresql: where the database is.</summary>
    public PostgreSqlOptions PostgreSql { get; set; } = new();

    /// <summary>How often agents report; sent back to them with every report.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A node with no report for this many days is "missing".</summary>
    public int MissingAfterDays { get; set; } = 3;

    /// <summary>History (state changes, resolved findings, events, builds) older than this is deleted.</summary>
    public int RetentionDays { get; set; } = 30;

    /// <summary>How often node states are re-judged (stale, missing) and metrics refreshed.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(5);

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

        problems.AddRange(Check.CertificateAndKey(section, nameof(Certificate), Certificate, nameof(Key), Key));
        problems.AddRange(Check.CaBundle(section, nameof(CaBundle), CaBundle));
        if (StoreKinds.Parse(Store) is not { } engine)
        {
            problems.Add($"{Check.Key(section, nameof(Store))}: must be \"{StoreKinds.SqliteName}\" or \"{StoreKinds.PostgreSqlName}\" (got \"{Store}\")");
        }
        else if (engine == StoreKind.PostgreSql)
        {
            problems.AddRange(PostgreSql.Validate($"{section}:{nameof(PostgreSql)}"));
        }
        else
        {
            problems.AddRange(Check.Required(section, nameof(Database), Database));
        }

        problems.AddRange(Check.Positive(section, nameof(HeartbeatInterval), HeartbeatInterval));
        problems.AddRange(Check.Positive(section, nameof(SweepInterval), SweepInterval));
        problems.AddRange(Check.Range(section, nameof(MissingAfterDays), MissingAfterDays, 1, 3650));
        problems.AddRange(Check.Range(section, nameof(RetentionDays), RetentionDays, 1, 3650));
        var dir = Engine == StoreKind.Sqlite && Database.Length > 0 && Database != ":memory:" ? Path.GetDirectoryName(Path.GetFullPath(Database)) : null;
        if (dir is not null && !Directory.Exists(dir))
        {
            problems.Add($"{Check.Key(section, nameof(Database))}: directory {dir} does not exist");
        }

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

/// <summary>The "Coordinator:PostgreSql" section: an Npgsql connection string without the password, and the file that holds it.</summary>
public sealed class PostgreSqlOptions : IValidatedOptions
{
    /// <summary>e.g. "Host=db1.example;Port=5432;Database=toolforge_coordinator;Username=coordinator;SSL Mode=VerifyFull".</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>A file (mode 0600/0640, owned by the service) whose first line is the password; empty for peer or certificate auth.</summary>
    public string PasswordFile { get; set; } = string.Empty;

    /// <summary>Seconds a statement may run before it is cancelled (a hung database must not hang the coordinator).</summary>
    public int CommandTimeoutSeconds { get; set; } = 10;

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (ConnectionString.Trim().Length == 0)
        {
            problems.Add($"{Check.Key(section, nameof(ConnectionString))}: required when Store is \"postgresql\"");
        }
        else
        {
            try
            {
                var b = new Npgsql.NpgsqlConnectionStringBuilder(ConnectionString);
                if (!string.IsNullOrEmpty(b.Password))
                {
                    problems.Add($"{Check.Key(section, nameof(ConnectionString))}: holds a password; put it in {nameof(PasswordFile)} instead (the JSON puppet writes is readable by more than the service)");
                }

                if (string.IsNullOrEmpty(b.Host))
                {
                    problems.Add($"{Check.Key(section, nameof(ConnectionString))}: names no Host");
                }
            }
            catch (ArgumentException ex)
            {
                problems.Add($"{Check.Key(section, nameof(ConnectionString))}: not a valid connection string ({ex.Message})");
            }
        }

        if (PasswordFile.Length > 0)
        {
            problems.AddRange(Check.FileExists(section, nameof(PasswordFile), PasswordFile));
        }

        problems.AddRange(Check.Range(section, nameof(CommandTimeoutSeconds), CommandTimeoutSeconds, 1, 600));
        return problems;
    }
}
