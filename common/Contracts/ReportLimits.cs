namespace Toolforge.Agents.Common.Contracts;

/// <summary>
/// The limits of what the coordinator takes from an agent, in one place: the coordinator refuses anything beyond
/// them, and every agent cuts its reports to them before sending (<see cref="Reporting.ReportFitter"/>), so a
/// tenant-controlled string can never make a node's reports fail.
/// </summary>
public static class ReportLimits
{
    public const int MaxChecks = 500;
    public const int MaxFindings = 5000;
    public const int MaxEvents = 1000;
    public const int MaxMessage = 4096;
    public const int MaxDetails = 32;
    public const int MaxDetailKey = 64;
    public const int MaxDetailValue = 1024;
    public const int MaxSubject = 512;
    public const int MaxAgentVersion = 64;
    public const int MaxCheckName = 128;
    public const int MaxKind = 64;

    /// <summary>Build progress: log lines per call and characters per line.</summary>
    public const int MaxLogLinesPerProgress = 10_000;
    public const int MaxLogLine = 16_384;

    /// <summary>A build's log kept by the coordinator: lines beyond this are counted, not kept.</summary>
    public const int MaxLogLinesPerBuild = 100_000;

    /// <summary>Issue 27: image inventories per progress call, Debian packages per image, and each package's fields.</summary>
    public const int MaxInventoriesPerProgress = 4;
    public const int MaxPackagesPerImage = 20_000;
    public const int MaxPackageName = 128;
    public const int MaxPackageVersion = 256;
    public const int MaxPackageArchitecture = 32;
    public const int MaxImagePath = 256;

    /// <summary>Issue 27: images a node-agent reports, and the repo digests of each.</summary>
    public const int MaxNodeImages = 5000;
    public const int MaxRepoDigestsPerImage = 16;

    /// <summary>Report calls per second per (identity, agent kind), and the burst allowed above it (token bucket).</summary>
    public const double ReportRate = 5;
    public const int ReportBurst = 20;

    /// <summary>How far in the future a client-supplied time may lie before the coordinator clamps it to now + this.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>
    /// <paramref name="s"/> cut to at most <paramref name="max"/> characters, ending in a marker that says how many
    /// were cut ("…[cut 9000 chars]"), so a reader sees the text is not whole.
    /// </summary>
    public static string Cut(string s, int max)
    {
        if (s.Length <= max)
        {
            return s;
        }

        // The marker's length depends on the count it shows; shrink what is kept until the two agree (monotone, so it ends).
        var keep = max;
        string marker;
        while (true)
        {
            marker = $"…[cut {s.Length - keep} chars]";
            var next = Math.Max(0, max - marker.Length);
            if (next == keep)
            {
                break;
            }

            keep = next;
        }

        if (keep > 0 && char.IsHighSurrogate(s[keep - 1]))
        {
            keep--; // never split a surrogate pair
            marker = $"…[cut {s.Length - keep} chars]";
        }

        return (s[..keep] + marker)[..Math.Min(max, keep + marker.Length)];
    }
}
