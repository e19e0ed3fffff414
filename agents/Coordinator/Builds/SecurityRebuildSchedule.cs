using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Security;

namespace Toolforge.Agents.Coordinator.Builds;

/// <summary>
/// The "Coordinator:SecurityRebuild" section (issue 27): a security rebuild of the builders' image tree every
/// <see cref="Interval"/> (off when zero), requested by the coordinator itself, recorded and audited as any build.
/// </summary>
public sealed class SecurityRebuildOptions : IValidatedOptions
{
    public const string Section = "Coordinator:SecurityRebuild";

    /// <summary>How often (0: never; e.g. "7.00:00:00" weekly, at least an hour). Counted from the last security rebuild asked for, by anyone.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.Zero;

    /// <summary>Image paths whose lineages are rebuilt; empty: every image of the builder's tree.</summary>
    public string[] Images { get; set; } = [];

    /// <summary>Recorded with each scheduled rebuild.</summary>
    public string Reason { get; set; } = "scheduled (Coordinator:SecurityRebuild)";

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (Interval != TimeSpan.Zero && (Interval < TimeSpan.FromHours(1) || Interval > Check.LongestDuration))
        {
            problems.Add($"{Check.Key(section, nameof(Interval))}: 0 (off) or from 01:00:00 to {Check.LongestDuration:d\\.hh\\:mm\\:ss} (got {Interval})");
        }

        var request = new RequestBuildRequest { Build = new BuildRequest { SecurityRebuild = true, Reason = Reason } };
        request.Build.Images.AddRange(Images);
        if (Reports.BuildRequestValidator.Validate(request) is { } problem)
        {
            problems.Add($"{Check.Key(section, problem.StartsWith("build.reason", StringComparison.Ordinal) ? nameof(Reason) : nameof(Images))}: {problem}");
        }

        return problems;
    }
}

/// <summary>
/// Asks for the scheduled security rebuild when it is due: on the instance holding the sweeper lease only, looked at
/// by the sweeper every SweepInterval; due when no security rebuild of the same images was asked for within Interval
/// (the coordinator's start counts as one only when none is stored). Audited as request-build by <see cref="Identity"/>.
/// </summary>
public sealed partial class SecurityRebuildSchedule(BuildQueue builds, AuditLog audit, IOptions<SecurityRebuildOptions> options, TimeProvider time, ILogger<SecurityRebuildSchedule> logger)
{
    /// <summary>Who asks, in the build records and the audit: upper-case letters, which no certificate's identity has (they are lower-cased).</summary>
    public const string Identity = "Coordinator:SecurityRebuild";

    private readonly DateTimeOffset _started = time.GetUtcNow();
    private readonly SemaphoreSlim _one = new(1, 1);
    private DateTimeOffset? _lastSeen; // the newest security rebuild of the images seen: outlives its build record's retention
    private bool _seeded;

    /// <summary>The build asked for now, or null when none was due (or the schedule is off). One call at a time.</summary>
    public async Task<Build?> RunDueAsync()
    {
        await _one.WaitAsync().ConfigureAwait(false);
        try
        {
            return await RunDueOnceAsync().ConfigureAwait(false);
        }
        finally
        {
            _one.Release();
        }
    }

    private async Task<Build?> RunDueOnceAsync()
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        if (o.Interval <= TimeSpan.Zero)
        {
            return null;
        }

        // Counted from the last security rebuild of the same images (by anyone: an admin's covers it), as stored; from
        // this start only when there is none (a fresh install does not rebuild at once; a restart does not reset it).
        // The build records are read at the first look and when the count says due, not at every sweep.
        if (!_seeded || now - (_lastSeen ?? _started) >= o.Interval)
        {
            var wanted = o.Images.Order(StringComparer.Ordinal).ToList();
            if (builds.LastRequestedAt(r => r.SecurityRebuild && r.Images.Order(StringComparer.Ordinal).SequenceEqual(wanted, StringComparer.Ordinal)) is { } s
                && (_lastSeen is null || s > _lastSeen))
            {
                _lastSeen = s;
            }

            _seeded = true;
        }

        if (now - (_lastSeen ?? _started) < o.Interval)
        {
            return null;
        }

        var request = new RequestBuildRequest { Build = new BuildRequest { SecurityRebuild = true, Reason = o.Reason } };
        request.Build.Images.AddRange(o.Images);
        var build = await builds.RequestAsync(Identity, request).ConfigureAwait(false);
        await audit.WriteAsync(Identity, "request-build", "accepted", $"build={build.Id} security_rebuild=True reason={o.Reason} images={string.Join(",", o.Images)} (Coordinator:SecurityRebuild every {o.Interval})").ConfigureAwait(false);
        _lastSeen = now;
        Log.Requested(logger, build.Id, o.Interval);
        return build;
    }

    private static partial class Log
    {
        [LoggerMessage(2310, LogLevel.Information, "scheduled security rebuild {Id} requested (Coordinator:SecurityRebuild:Interval {Interval})")]
        public static partial void Requested(ILogger logger, string id, TimeSpan interval);
    }
}
