using System.Globalization;
using System.IO.Enumeration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Checks.Processes;

/// <summary>
/// node.stuck-processes: processes in uninterruptible sleep ('D') on every scan for at least <c>After</c> (a process
/// that leaves D once starts over), grouped by wchan and by the network mount they wait on; warning at
/// <c>Warning</c>, failing at <c>Failing</c>; a gauge per wchan; one finding per offender (the longest first).
/// </summary>
public sealed class StuckProcessCheck : PeriodicCheck
{
    public const string Check = "node.stuck-processes";

    private static readonly Gauge ByWchan = Metrics.CreateGauge("toolforge_stuck_processes", "Processes in uninterruptible sleep for longer than NodeAgent:StuckProcesses:After, by wchan.", "wchan");

    private readonly StuckProcessesOptions _o;
    private readonly Dictionary<(int Pid, long Start), DateTimeOffset> _since = [];
    private HashSet<string> _wchans = new(StringComparer.Ordinal);

    private readonly StuckProcessEvidence? _evidence;

    public StuckProcessCheck(IOptions<StuckProcessesOptions> options, AgentState state, TimeProvider time, ILogger<StuckProcessCheck> logger, StuckProcessEvidence? evidence = null)
        : base(state, time, logger) => (_o, _evidence) = (options.Value, evidence);

    /// <summary>
    /// The one-shot `check` command: sample for this long before answering (one scan cannot tell how long a process has
    /// been in D), and count as stuck what stayed in D for the whole sample. Null: the daemon's way, After.
    /// </summary>
    public TimeSpan? OneShotSample { get; set; }

    private bool OneShot => OneShotSample is not null;

    // How long a process must stay in D to count: After for the daemon, the sample for a one-shot run.
    private TimeSpan Threshold => OneShotSample ?? _o.After;

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => _o.Interval;

    protected override TimeSpan Timeout => OneShot ? Threshold + Sample + TimeSpan.FromSeconds(30) : TimeSpan.FromSeconds(30);

    private TimeSpan Sample => TimeSpan.FromTicks(Math.Clamp(Threshold.Ticks / 8, TimeSpan.TicksPerSecond / 4, _o.Interval.Ticks));

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var started = Time.GetUtcNow();
        var (stuck, scanned) = await Task.Run(Scan, ct).ConfigureAwait(false);
        while (OneShot && Time.GetUtcNow() - started < Threshold)
        {
            await Task.Delay(Sample, Time, ct).ConfigureAwait(false);
            (stuck, scanned) = await Task.Run(Scan, ct).ConfigureAwait(false);
        }

        Report(stuck, scanned);
    }

    // One scan: remember since when each process has been in D; those in D for After or longer are stuck.
    private (List<(DProcess P, TimeSpan For)> Stuck, int Scanned) Scan()
    {
        var now = Time.GetUtcNow();
        var (inD, scanned) = ProcScanner.Scan(_o.ProcRoot);
        var seen = new HashSet<(int, long)>();
        var stuck = new List<(DProcess, TimeSpan)>();
        foreach (var p in inD.Where(p => !Ignored(p)))
        {
            var key = (p.Pid, p.StartTicks);
            seen.Add(key);
            var since = _since.TryGetValue(key, out var s) ? s : _since[key] = now;
            if (now - since >= Threshold)
            {
                stuck.Add((p, now - since));
            }
        }

        foreach (var gone in _since.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            _since.Remove(gone);
        }

        return (stuck.OrderByDescending(s => s.Item2).ThenBy(s => s.Item1.Pid).ToList(), scanned);
    }

    private bool Ignored(DProcess p) =>
        (p.KernelThread && _o.IgnoreKernelThreads.Any(g => FileSystemName.MatchesSimpleExpression(g, p.Comm, ignoreCase: false)))
        || _o.IgnoreCommands.Any(g => FileSystemName.MatchesSimpleExpression(g, p.Comm, ignoreCase: false));

    private void Report(List<(DProcess P, TimeSpan For)> stuck, int scanned)
    {
        var n = stuck.Count;
        var state = n >= _o.Failing ? CheckState.Failing : n >= _o.Warning ? CheckState.Warning : CheckState.Ok;
        var severity = state == CheckState.Failing ? Severity.Error : Severity.Warning;
        var findings = stuck.Take(_o.MaxListed).Select(s =>
        {
            var f = new Finding
            {
                Kind = "stuck-process",
                Subject = $"{s.P.Pid.ToString(CultureInfo.InvariantCulture)} {Printable(s.P.Comm)}",
                Severity = severity,
                Check = Check,
                Message = $"pid {s.P.Pid.ToString(CultureInfo.InvariantCulture)} ({Printable(s.P.Comm)}) has been in uninterruptible sleep for {Duration(s.For)} in {s.P.Wchan}{(s.P.Mount is { } m ? $", on {m}" : string.Empty)}",
            };
            f.Details["wchan"] = s.P.Wchan;
            f.Details["seconds"] = ((long)s.For.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            if (s.P.Mount is { } mount)
            {
                f.Details["mount"] = mount;
            }

            if (s.P.KernelThread)
            {
                f.Details["kernel_thread"] = "true";
            }

            return f;
        }).ToList();

        var byWchan = stuck.GroupBy(s => s.P.Wchan).Select(g => (Wchan: g.Key, Count: g.Count())).OrderByDescending(g => g.Count).ThenBy(g => g.Wchan, StringComparer.Ordinal).ToList();
        var byMount = stuck.Where(s => s.P.Mount is not null).GroupBy(s => s.P.Mount!).Select(g => $"{g.Key} {g.Count()}").ToList();
        var now = byWchan.Take(_o.MaxListed).Select(g => g.Wchan).ToHashSet(StringComparer.Ordinal);
        foreach (var (wchan, count) in byWchan.Take(_o.MaxListed))
        {
            ByWchan.WithLabels(wchan).Set(count);
        }

        foreach (var old in _wchans.Where(w => !now.Contains(w)))
        {
            ByWchan.RemoveLabelled(old);
        }

        _wchans = now;
        var threshold = OneShot ? $"{Duration(Threshold)} (the whole sample of this one-shot run; the daemon waits {Duration(_o.After)})" : $"{Duration(_o.After)}";
        var message = n == 0
            ? $"none in uninterruptible sleep for {threshold} or more ({scanned} processes, {_since.Count} in D for less)"
            : $"{n} process{(n == 1 ? string.Empty : "es")} in uninterruptible sleep for {threshold} or more: "
              + string.Join("; ", stuck.Take(5).Select(s => $"{s.P.Pid.ToString(CultureInfo.InvariantCulture)} {Printable(s.P.Comm)} in {s.P.Wchan} for {Duration(s.For)}{(s.P.Mount is { } m ? $" on {m}" : string.Empty)}"))
              + (n > 5 ? $"; and {n - 5} more" : string.Empty)
              + $" (by wchan: {string.Join(", ", byWchan.Take(5).Select(g => $"{g.Wchan} {g.Count.ToString(CultureInfo.InvariantCulture)}"))}"
              + (byMount.Count > 0 ? $"; by mount: {string.Join(", ", byMount.Take(5))}" : string.Empty) + ")";
        _evidence?.Publish([.. stuck.Select(s => new StuckProcess(s.P, s.For))], Time.GetUtcNow());
        State.SetFindings(Check, findings);
        State.SetCheck(Check, state, message, values: new Dictionary<string, double> { ["stuck"] = n, ["in_d"] = _since.Count, ["processes"] = scanned });
    }

    private static string Duration(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds:00}s" : $"{(int)t.TotalSeconds}s";

    // comm is the process's own choice (prctl PR_SET_NAME): no control characters past this point.
    private static string Printable(string s) => string.Concat(s.Select(c => char.IsControl(c) ? '?' : c));
}
