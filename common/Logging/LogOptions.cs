using Serilog.Events;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Common.Logging;

/// <summary>The "Log" section of every daemon's configuration.</summary>
public sealed class LogOptions : IValidatedOptions
{
    public const string Section = "Log";

    /// <summary>Verbose, Debug, Information, Warning, Error or Fatal.</summary>
    public string Level { get; set; } = "Information";

    /// <summary>
    /// auto (the default: journal under systemd, which says so with JOURNAL_STREAM; plain with times anywhere else, e.g.
    /// a daemon run by hand on a terminal), journal (systemd's "&lt;6&gt;" prefixes), plain, or none.
    /// </summary>
    public string Console { get; set; } = "auto";

    public SyslogLogOptions Syslog { get; set; } = new();

    public LogEventLevel MinimumLevel =>
        Enum.TryParse<LogEventLevel>(Level, ignoreCase: true, out var l) ? l : LogEventLevel.Information;

    public IEnumerable<string> Validate(string section)
    {
        if (!Enum.TryParse<LogEventLevel>(Level, ignoreCase: true, out _))
        {
            yield return $"{Check.Key(section, nameof(Level))}: must be one of Verbose, Debug, Information, Warning, Error, Fatal (got \"{Level}\")";
        }

        foreach (var p in Check.OneOf(section, nameof(Console), Console, "auto", "journal", "plain", "none"))
        {
            yield return p;
        }

        foreach (var p in Syslog.Validate(Check.Key(section, nameof(Syslog))))
        {
            yield return p;
        }
    }
}

public sealed class SyslogLogOptions : IValidatedOptions
{
    /// <summary>Empty: off. "unix:/dev/log" for the local socket, or "tcp://host:port" (RFC 6587 octet counting).</summary>
    public string Target { get; set; } = string.Empty;

    /// <summary>Syslog facility name (daemon, local0 ... local7, user).</summary>
    public string Facility { get; set; } = "daemon";

    public IEnumerable<string> Validate(string section)
    {
        if (Target.Length > 0 && SyslogTarget.TryParse(Target, out _) is { } error)
        {
            yield return $"{Check.Key(section, nameof(Target))}: {error}";
        }

        if (SyslogFacility.FromName(Facility) is null)
        {
            yield return $"{Check.Key(section, nameof(Facility))}: unknown facility \"{Facility}\" (use daemon, user, local0 ... local7)";
        }
    }
}

public static class SyslogFacility
{
    private static readonly string[] Names =
    [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
        "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5",
        "local6", "local7",
    ];

    public static int? FromName(string name)
    {
        var i = Array.FindIndex(Names, n => n.Equals(name, StringComparison.OrdinalIgnoreCase));
        return i < 0 ? null : i;
    }
}

/// <summary>Where the daemon's own syslog output goes.</summary>
public sealed record SyslogTarget(bool IsUnix, string PathOrHost, int Port)
{
    /// <summary>Returns null and sets <paramref name="target"/> when valid, else the reason.</summary>
    public static string? TryParse(string text, out SyslogTarget? target)
    {
        target = null;
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = text["unix:".Length..];
            if (path.Length == 0 || path[0] != '/')
            {
                return $"\"{text}\" needs an absolute socket path, e.g. unix:/dev/log";
            }

            target = new SyslogTarget(true, path, 0);
            return null;
        }

        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme == "tcp" && uri.Port > 0)
        {
            target = new SyslogTarget(false, uri.Host, uri.Port);
            return null;
        }

        return $"\"{text}\" is neither unix:/path nor tcp://host:port";
    }
}
