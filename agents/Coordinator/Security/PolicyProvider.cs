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
    private readonly IReadOnlyCollection<ValidatedOptionsEntry> _entries;
    private readonly OwnConfiguration? _own;
    private readonly ILogger<PolicyProvider> _logger;
    private volatile SecurityPolicy _current;

    /// <param name="entries">Every options type of the coordinator: a reload checks the whole file as a start would, and takes only the security keys.</param>
    /// <param name="own">The program's own configuration (its file and TOOLFORGE_ variables, not what the host adds), read again for that check.</param>
    public PolicyProvider(IOptions<SecurityOptions> options, ILogger<PolicyProvider> logger, IConfiguration? configuration = null,
        IReadOnlyCollection<ValidatedOptionsEntry>? entries = null, OwnConfiguration? own = null)
    {
        _configuration = configuration;
        _entries = entries ?? [];
        _own = own;
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

            // The whole file is checked as the next start would check it (a file that start would refuse is refused
            // now, not reported "reloaded" and found at the next restart); only the roles and the deny-list are taken.
            // One read: what is checked is what is applied (a file rewritten between two reads must not slip through).
            var whole = _entries.Count > 0 && _own is not null;
            var root = whole ? _own!.ReadAgain() : fresh.Build();
            var section = root.GetSection(SecurityOptions.Section);
            var o = OptionsRegistration.GetExactly<SecurityOptions>(section, (c, o) => c.Bind(o));
            var problems = whole
                ? ValidatedOptionsEntry.ProblemsOf(root, _entries)
                : ConfigurationShape.Problems(section, o).Concat(o.Validate(SecurityOptions.Section)).ToList();
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
