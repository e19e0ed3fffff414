using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.LogShipper.Delivery;

/// <summary>
/// The delivery keys of the "Shipper" section of /etc/toolforge-agents/log-shipper.json: where to, how (RELP window,
/// timeouts, reconnects), the cursor file. What is read from the journal is Journal/JournalOptions, the same section.
/// </summary>
public sealed class ShipperOptions : IValidatedOptions
{
    public const string Section = "Shipper";

    /// <summary>Tried in order; the next one takes over when the current one fails (failover).</summary>
    public List<DestinationOptions> Destinations { get; set; } = [];

    /// <summary>Where the cursor of the last delivered entry is kept (temp file, fsync, rename).</summary>
    public string StateFile { get; set; } = "/var/lib/toolforge-log-shipper/cursor";

    /// <summary>head: ship everything the journal holds (duplicates possible); tail: start at the newest (a gap possible).</summary>
    public string OnUnknownCursor { get; set; } = "head";

    /// <summary>Where to start with no state file at all: head or tail.</summary>
    public string StartAt { get; set; } = "tail";

    /// <summary>Messages longer than this are cut, with a marker that says how much.</summary>
    public int MaxMessageBytes { get; set; } = 64 * 1024;

    /// <summary>RELP frames in flight before waiting for acknowledgements: where the window starts, and its least.</summary>
    public int RelpWindow { get; set; } = 128;

    /// <summary>The most the RELP window grows to when the acknowledgement rate and round trip call for it.</summary>
    public int RelpWindowMax { get; set; } = 4096;

    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A receiver that takes no data or gives no acknowledgement for this long is dropped and reconnected.</summary>
    public TimeSpan IoTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan ReconnectMin { get; set; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan ReconnectMax { get; set; } = TimeSpan.FromSeconds(30);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        if (Destinations.Count == 0)
        {
            p.Add($"{Check.Key(section, nameof(Destinations))}: name at least one destination (relp://, relp+tls://, tcp:// or tls://host:port)");
        }

        for (var i = 0; i < Destinations.Count; i++)
        {
            p.AddRange(Destinations[i].Validate(Check.Key(section, $"{nameof(Destinations)}:{i}")));
        }

        p.AddRange(Check.Required(section, nameof(StateFile), StateFile));
        p.AddRange(Check.ReplaceableFile(section, nameof(StateFile), StateFile));
        p.AddRange(Check.OneOf(section, nameof(OnUnknownCursor), OnUnknownCursor, "head", "tail"));
        p.AddRange(Check.OneOf(section, nameof(StartAt), StartAt, "head", "tail"));
        p.AddRange(Check.Range(section, nameof(MaxMessageBytes), MaxMessageBytes, 1024, 16 * 1024 * 1024));
        p.AddRange(Check.Range(section, nameof(RelpWindow), RelpWindow, 1, 100_000));
        p.AddRange(Check.Range(section, nameof(RelpWindowMax), RelpWindowMax, 1, 100_000));
        if (RelpWindowMax < RelpWindow)
        {
            p.Add($"{Check.Key(section, nameof(RelpWindowMax))}: must be at least RelpWindow ({RelpWindow})");
        }

        p.AddRange(Check.Positive(section, nameof(ConnectTimeout), ConnectTimeout));
        p.AddRange(Check.Positive(section, nameof(IoTimeout), IoTimeout));
        p.AddRange(Check.Positive(section, nameof(ReconnectMin), ReconnectMin));
        p.AddRange(Check.Positive(section, nameof(ReconnectMax), ReconnectMax));
        return p;
    }
}
