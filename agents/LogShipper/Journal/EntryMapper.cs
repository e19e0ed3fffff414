using System.Globalization;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Syslog;

namespace Toolforge.Agents.LogShipper.Journal;

/// <summary>The journal fields the shipper uses, read once per entry.</summary>
public sealed class JournalRecord
{
    public string Cursor { get; init; } = string.Empty;
    public long RealtimeMicros { get; init; }
    public string? SourceRealtime { get; init; }
    public string? Message { get; init; }
    public string? Priority { get; init; }
    public string? Facility { get; init; }
    public string? Hostname { get; init; }
    public string? Identifier { get; init; }
    public string? Comm { get; init; }
    public string? SyslogPid { get; init; }
    public string? Pid { get; init; }
    public string? MessageId { get; init; }
    public string? Unit { get; init; }
    public string? BootId { get; init; }
    public string? Transport { get; init; }

    public static JournalRecord Read(JournalReader j) => new()
    {
        Cursor = j.Cursor(),
        RealtimeMicros = j.RealtimeMicros(),
        SourceRealtime = j.Field("_SOURCE_REALTIME_TIMESTAMP"),
        Message = j.Field("MESSAGE"),
        Priority = j.Field("PRIORITY"),
        Facility = j.Field("SYSLOG_FACILITY"),
        Hostname = j.Field("_HOSTNAME"),
        Identifier = j.Field("SYSLOG_IDENTIFIER"),
        Comm = j.Field("_COMM"),
        SyslogPid = j.Field("SYSLOG_PID"),
        Pid = j.Field("_PID"),
        MessageId = j.Field("MESSAGE_ID"),
        Unit = j.Field("_SYSTEMD_UNIT"),
        BootId = j.Field("_BOOT_ID"),
        Transport = j.Field("_TRANSPORT"),
    };

    public int Severity => int.TryParse(Priority, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 7 ? p : 5;
}

/// <summary>
/// Journal entry → RFC 5424: PRI from SYSLOG_FACILITY and PRIORITY (user.notice when missing), the timestamp from
/// _SOURCE_REALTIME_TIMESTAMP then __REALTIME_TIMESTAMP (microseconds), HOSTNAME from _HOSTNAME, APP-NAME from
/// SYSLOG_IDENTIFIER then _COMM, PROCID from SYSLOG_PID then _PID, MSGID from MESSAGE_ID, and structured data
/// [journal@32473 unit=... boot_id=... cursor=...] (32473 is the documentation enterprise number of RFC 5612).
/// </summary>
public static class EntryMapper
{
    public const string SdId = "journal@32473";

    public static SyslogMessage Map(JournalRecord r)
    {
        var m = new SyslogMessage
        {
            Facility = int.TryParse(r.Facility, NumberStyles.None, CultureInfo.InvariantCulture, out var f) && f is >= 0 and <= 23 ? f : 1,
            Severity = r.Severity,
            TimestampMicros = long.TryParse(r.SourceRealtime, NumberStyles.None, CultureInfo.InvariantCulture, out var src) && src > 0 ? src : r.RealtimeMicros,
            Hostname = r.Hostname,
            AppName = r.Identifier ?? r.Comm,
            ProcId = r.SyslogPid ?? r.Pid,
            MsgId = r.MessageId,
            Message = r.Message ?? string.Empty,
        };
        var sd = new List<KeyValuePair<string, string>>(3);
        if (r.Unit is { Length: > 0 } unit)
        {
            sd.Add(new("unit", unit));
        }

        if (r.BootId is { Length: > 0 } boot)
        {
            sd.Add(new("boot_id", boot));
        }

        sd.Add(new("cursor", r.Cursor));
        m.StructuredData.Add(new SdElement(SdId, sd));
        return m;
    }
}

/// <summary>The configured filters: units, identifiers, maximum priority, kernel messages on/off.</summary>
public sealed class EntryFilter(ShipperOptions o)
{
    private readonly HashSet<string> _units = o.Units.ToHashSet(StringComparer.Ordinal);
    private readonly HashSet<string> _identifiers = o.Identifiers.ToHashSet(StringComparer.Ordinal);

    public bool Accepts(JournalRecord r)
    {
        if (r.Severity > o.MaxPriority)
        {
            return false;
        }

        if (r.Transport == "kernel")
        {
            return o.Kernel; // the unit and identifier filters are for services; kernel messages have their own switch
        }

        if (_units.Count == 0 && _identifiers.Count == 0)
        {
            return true;
        }

        return (r.Unit is not null && _units.Contains(r.Unit)) || (r.Identifier is not null && _identifiers.Contains(r.Identifier));
    }
}

/// <summary>
/// Per-unit rate limit: at most Burst entries per unit per Interval; the rest are dropped and counted (never silently:
/// the shipper logs one line per interval with what it dropped). Pure: time comes in.
/// </summary>
public sealed class RateLimiter(RateLimitOptions o)
{
    private readonly Dictionary<string, (DateTimeOffset Start, int Count)> _windows = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _dropped = new(StringComparer.Ordinal);

    public bool Allow(string key, DateTimeOffset now)
    {
        if (o.Burst <= 0)
        {
            return true;
        }

        if (!_windows.TryGetValue(key, out var w) || now - w.Start >= o.Interval)
        {
            w = (now, 0);
        }

        if (w.Count >= o.Burst)
        {
            _dropped[key] = _dropped.GetValueOrDefault(key) + 1;
            _windows[key] = w;
            return false;
        }

        _windows[key] = (w.Start, w.Count + 1);
        return true;
    }

    /// <summary>Dropped entries per unit since the last call.</summary>
    public IReadOnlyDictionary<string, long> TakeDropped()
    {
        var copy = new Dictionary<string, long>(_dropped, StringComparer.Ordinal);
        _dropped.Clear();
        return copy;
    }
}
