using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Coordinator.Security;

/// <summary>
/// Holds the current <see cref="SecurityPolicy"/> and builds a new one from the configuration on reload (SIGHUP,
/// `systemctl reload`). A reload that finds a problem in the file keeps the policy in force and says why; one that
/// succeeds tells its subscribers (the stream registry closes what is no longer allowed).
/// </summary>
public sealed partial class PolicyProvider
{
    private readonly IConfiguration? _configuration;
    private readonly IReadOnlyCollection<string> _ownedElsewhere;
    private readonly ILogger<PolicyProvider> _logger;
    private volatile SecurityPolicy _current;

    /// <param name="ownedElsewhere">The keys and sections of "Coordinator" other features own (a reload checks only its own).</param>
    public PolicyProvider(IOptions<SecurityOptions> options, ILogger<PolicyProvider> logger, IConfiguration? configuration = null, IReadOnlyCollection<string>? ownedElsewhere = null)
    {
        _configuration = configuration;
        _ownedElsewhere = ownedElsewhere ?? [];
        _logger = logger;
        _current = new SecurityPolicy(options.Value);
    }

    public SecurityPolicy Current => _current;

    /// <summary>Raised after a new policy took effect.</summary>
    public event Action<SecurityPolicy>? Changed;

    /// <summary>Re-reads the configuration; returns null when the new policy is in force, else the problem (old one kept).</summary>
    public string? Reload()
    {
        if (_configuration is not IConfigurationBuilder sources)
        {
            return "this coordinator was built without a reloadable configuration";
        }

        string? problem;
        SecurityPolicy? next = null;
        try
        {
            // A fresh read of the same sources (the file, then TOOLFORGE_* variables): the live configuration is left
            // alone, so nothing but the roles and the deny-list changes under a running coordinator.
            var fresh = new ConfigurationBuilder();
            foreach (var source in sources.Sources)
            {
                fresh.Add(source);
            }

            var section = fresh.Build().GetSection(SecurityOptions.Section);
            var o = OptionsRegistration.GetExactly<SecurityOptions>(section, (c, o) => c.Bind(o));
            var problems = ConfigurationShape.Problems(section, o, _ownedElsewhere).Concat(o.Validate(SecurityOptions.Section)).ToList();
            problem = problems.Count > 0 ? string.Join("; ", problems) : null;
            if (problem is null)
            {
                next = new SecurityPolicy(o);
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or InvalidOperationException or IOException or ArgumentException)
        {
            problem = $"{ex.Message} {ex.InnerException?.Message}".Trim();
        }

        if (next is null)
        {
            Log.ReloadRefused(_logger, problem!);
            return problem;
        }

        _current = next;
        Log.Reloaded(_logger, next.Denied.Count);
        Changed?.Invoke(next);
        return null;
    }

    private static partial class Log
    {
        [LoggerMessage(2010, LogLevel.Information, "reloaded roles and deny-list ({Denied} deny entries)")]
        public static partial void Reloaded(ILogger logger, int denied);

        [LoggerMessage(2011, LogLevel.Error, "reload refused, the previous roles and deny-list stay in force: {Problem}")]
        public static partial void ReloadRefused(ILogger logger, string problem);
    }
}
