using System.Globalization;
using System.Text.RegularExpressions;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Journal;

/// <summary>One journal entry as the rules see it.</summary>
public sealed record JournalLine(long RealtimeMicros, string Message, string? Unit, string? Identifier, bool Kernel)
{
    public DateTimeOffset Time => DateTimeOffset.UnixEpoch.AddTicks(RealtimeMicros * 10);
}

/// <summary>A rule's remembered state (saved with the journal cursor).</summary>
public sealed record RuleSnapshot(string Name, List<DateTimeOffset> Hits, bool Active, DateTimeOffset? Since, DateTimeOffset? Last, string? LastMessage, int Count);

[System.Text.Json.Serialization.JsonSerializable(typeof(List<RuleSnapshot>))]
internal sealed partial class RuleSnapshotJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>A rule's state now.</summary>
public sealed record RuleState(string Rule, CheckState State, string Message, int Count, string? LastMessage);

/// <summary>
/// node-problem-detector's system-log-monitor without its stuck conditions: an "event" rule counts matches in a
/// sliding window (warning below its threshold, its severity at or above); a "condition" rule is set by a match and
/// clears itself on its recovery pattern or after a quiet period. Pure: time comes in.
/// </summary>
public sealed class JournalRuleEngine
{
    private readonly List<Rule> _rules;

    private sealed class Rule(JournalRuleOptions o)
    {
        public JournalRuleOptions Options { get; } = o;
        public Regex Pattern { get; } = new(o.Pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(1));
        public Regex? Recovery { get; } = o.RecoveryPattern.Length > 0 ? new(o.RecoveryPattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(1)) : null;
        public Queue<DateTimeOffset> Hits { get; } = new();
        public bool Active { get; set; }
        public DateTimeOffset? Since { get; set; }
        public DateTimeOffset? Last { get; set; }
        public string? LastMessage { get; set; }
        public string? ClearedBy { get; set; }
        public int ConditionCount { get; set; }
    }

    public JournalRuleEngine(IEnumerable<JournalRuleOptions> rules) => _rules = rules.Select(r => new Rule(r)).ToList();

    public IReadOnlyList<string> RuleNames => _rules.Select(r => r.Options.Name).ToList();

    /// <summary>What must survive an agent restart: recent event times and active conditions.</summary>
    public List<RuleSnapshot> Snapshot() => _rules.Select(r => new RuleSnapshot(
        r.Options.Name, r.Hits.ToList(), r.Active, r.Since, r.Last, r.LastMessage, r.ConditionCount)).ToList();

    public void Restore(IEnumerable<RuleSnapshot> snapshot)
    {
        foreach (var s in snapshot)
        {
            var r = _rules.FirstOrDefault(x => x.Options.Name == s.Name);
            if (r is null)
            {
                continue; // a rule removed from the config
            }

            r.Hits.Clear();
            foreach (var h in s.Hits.Order())
            {
                r.Hits.Enqueue(h);
            }

            (r.Active, r.Since, r.Last, r.LastMessage, r.ConditionCount) = (s.Active, s.Since, s.Last, s.LastMessage, s.Count);
        }
    }

    /// <summary>Feeds one line to every rule; returns the event rules it matched (each such match is a temporary problem).</summary>
    public List<JournalRuleOptions> Observe(JournalLine line)
    {
        var events = new List<JournalRuleOptions>();
        foreach (var r in _rules)
        {
            if (!FromSource(r.Options.Sources, line))
            {
                continue;
            }

            if (r.Pattern.IsMatch(line.Message))
            {
                r.Last = line.Time;
                r.LastMessage = line.Message;
                if (r.Options.Type == "event")
                {
                    r.Hits.Enqueue(line.Time);
                    events.Add(r.Options);
                }
                else
                {
                    if (!r.Active)
                    {
                        r.Since = line.Time;
                        r.ConditionCount = 0;
                    }

                    r.Active = true;
                    r.ConditionCount++;
                    r.ClearedBy = null;
                }
            }
            else if (r.Recovery is not null && r.Active && r.Recovery.IsMatch(line.Message))
            {
                r.Active = false;
                r.ClearedBy = $"recovered at {line.Time:yyyy-MM-dd HH:mm:ss}Z: {Cut(line.Message)}";
            }
        }

        return events;
    }

    public IReadOnlyList<RuleState> Evaluate(DateTimeOffset now)
    {
        var states = new List<RuleState>(_rules.Count);
        foreach (var r in _rules)
        {
            var severity = r.Options.Severity == "warning" ? CheckState.Warning : CheckState.Failing;
            if (r.Options.Type == "event")
            {
                while (r.Hits.Count > 0 && r.Hits.Peek() <= now - r.Options.Window)
                {
                    r.Hits.Dequeue();
                }

                var n = r.Hits.Count;
                var window = $"{r.Options.Window.TotalMinutes.ToString("0", CultureInfo.InvariantCulture)} min";
                states.Add(n == 0
                    ? new RuleState(r.Options.Name, CheckState.Ok, $"none in the last {window}", 0, null)
                    : new RuleState(r.Options.Name, n >= r.Options.Threshold ? severity : CheckState.Warning,
                        $"{n} in the last {window} (threshold {r.Options.Threshold}); last: {Cut(r.LastMessage)}", n, r.LastMessage));
                continue;
            }

            if (r.Active && r.Options.QuietPeriod > TimeSpan.Zero && r.Last is { } last && now - last >= r.Options.QuietPeriod)
            {
                r.Active = false;
                r.ClearedBy = $"quiet for {r.Options.QuietPeriod.TotalMinutes.ToString("0", CultureInfo.InvariantCulture)} min";
            }

            states.Add(r.Active
                ? new RuleState(r.Options.Name, severity, $"since {r.Since:yyyy-MM-dd HH:mm:ss}Z ({r.ConditionCount} match(es)): {Cut(r.LastMessage)}", r.ConditionCount, r.LastMessage)
                : new RuleState(r.Options.Name, CheckState.Ok, r.ClearedBy ?? "not seen", 0, null));
        }

        return states;
    }

    private static bool FromSource(List<string> sources, JournalLine line) =>
        sources.Count == 0 || sources.Any(s =>
            (s == "kernel" && line.Kernel) || s == line.Unit || s == line.Identifier);

    private static string Cut(string? s) => s is null ? string.Empty : s.Length <= 300 ? s : s[..300] + "…";

    /// <summary>The classics, used when the config names no rules.</summary>
    public static List<JournalRuleOptions> Defaults() =>
    [
        new() { Name = "oom-kill", Type = "event", Sources = ["kernel"], Pattern = @"Out of memory: Kill(ed)? process|oom-kill:|Memory cgroup out of memory", Threshold = 5, Window = TimeSpan.FromMinutes(30), EventReason = "OOMKilling" },
        new() { Name = "hung-task", Type = "event", Sources = ["kernel"], Pattern = @"task \S+:\d+ blocked for more than \d+ seconds", Threshold = 1, Window = TimeSpan.FromHours(1), EventReason = "TaskHung" },
        new() { Name = "filesystem-error", Type = "event", Sources = ["kernel"], Pattern = @"EXT4-fs error|XFS \(\S+\): (Corruption|metadata I/O error|log I/O error|Filesystem has been shut down)", Threshold = 1, Window = TimeSpan.FromHours(1), EventReason = "FilesystemError" },
        new() { Name = "runtime-down", Type = "condition", Sources = ["kubelet.service", "kubelet"], Pattern = @"container runtime is down|Container runtime not ready|ContainerRuntimeDown", RecoveryPattern = @"[Cc]ontainer runtime (is|became) (up|ready)", QuietPeriod = TimeSpan.FromMinutes(10) },
        new() { Name = "pleg-unhealthy", Type = "condition", Sources = ["kubelet.service", "kubelet"], Pattern = @"PLEG is not healthy", QuietPeriod = TimeSpan.FromMinutes(5) },
        new() { Name = "docker-deadline", Type = "event", Sources = ["docker.service", "dockerd"], Pattern = @"context deadline exceeded", Threshold = 10, Window = TimeSpan.FromMinutes(10), Severity = "warning", EventReason = "DockerDeadlineExceeded" },
    ];
}
