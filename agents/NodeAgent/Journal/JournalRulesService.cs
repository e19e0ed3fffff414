using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Common.Resilience;

using Toolforge.Agents.NodeAgent.Kubernetes.Conditions;

namespace Toolforge.Agents.NodeAgent.Journal;

/// <summary>
/// Follows the journal of kubelet, docker, containerd and the kernel from a saved cursor (on its own thread, as
/// sd_journal requires) and feeds the rules; each rule is a check "journal.NAME", and an active rule is a finding.
/// </summary>
internal sealed partial class JournalRulesService(
    IOptions<JournalOptions> options,
    IOptions<NodeOptions> node,
    AgentState state,
    TimeProvider time,
    ILogger<JournalRulesService> logger,
    INodeEvents? nodeEvents = null) : PeriodicCheck(state, time, logger)
{
    public const string CheckPrefix = "journal.";

    private readonly JournalRuleEngine _engine = new(options.Value.Rules.Count > 0 ? options.Value.Rules : JournalRuleEngine.Defaults());
    private readonly object _lock = new();

    protected override IReadOnlyList<string> Names => _engine.RuleNames.Select(n => CheckPrefix + n).ToList();

    // Judging the rules (their windows and quiet periods) is this check's periodic work; reading the journal runs
    // on its own thread and only feeds the rules.
    protected override TimeSpan Interval => options.Value.EvaluateInterval;

    protected override TimeSpan Timeout => TimeSpan.FromSeconds(10);

    protected override Task RunOnceAsync(CancellationToken ct)
    {
        Publish();
        return Task.CompletedTask;
    }

    private string CursorFile => Path.Combine(node.Value.StateDirectory, "node-agent.journal-cursor");

    private string RulesFile => Path.Combine(node.Value.StateDirectory, "node-agent.journal-rules.json");

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (!JournalReader.IsSupported)
        {
            foreach (var name in _engine.RuleNames)
            {
                State.SetCheck(CheckPrefix + name, CheckState.Unknown, "unsupported on this platform");
            }

            return Task.CompletedTask;
        }

        LoadRuleState();
        var reader = Task.Factory.StartNew(() => ReadLoop(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        return Task.WhenAll(reader, base.ExecuteAsync(stoppingToken));
    }

    /// <summary>Writes every rule's state to the agent's checks and findings.</summary>
    public void Publish()
    {
        IReadOnlyList<RuleState> states;
        lock (_lock)
        {
            states = _engine.Evaluate(Time.GetUtcNow());
        }

        var findings = new List<Finding>();
        foreach (var s in states)
        {
            State.SetCheck(CheckPrefix + s.Rule, s.State, s.Message, values: new Dictionary<string, double> { ["count"] = s.Count });
            if (s.State != CheckState.Ok)
            {
                findings.Add(new Finding
                {
                    Kind = "journal-rule",
                    Subject = s.Rule,
                    Message = s.Message,
                    Severity = s.State == CheckState.Failing ? Severity.Error : Severity.Warning,
                });
            }
        }

        State.SetFindings("journal", findings);
    }

    /// <summary>Between attempts to open the journal again: 1 s doubling, at most 60 s.</summary>
    private static readonly RetryBounds Reopen = new(Initial: TimeSpan.FromSeconds(1), Max: TimeSpan.FromSeconds(60));

    private void ReadLoop(CancellationToken ct)
    {
        var o = options.Value;
        var streak = new RetryStreak(Reopen, Time,
            (ex, _) => Log.ReadFailed(logger, ex.Message),
            (failures, length) => Log.ReadingAgain(logger, failures, length.TotalSeconds));
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using var journal = Open(o);
                Position(journal, startAtHead: o.Files.Count > 0);
                streak.Succeeded();
                var sinceSave = 0;
                while (!ct.IsCancellationRequested)
                {
                    while (journal.Next())
                    {
                        Observe(journal);

                        if (++sinceSave >= 1000)
                        {
                            SaveCursor(journal.Cursor());
                            sinceSave = 0;
                        }
                    }

                    if (sinceSave > 0)
                    {
                        SaveCursor(journal.Cursor());
                        sinceSave = 0;
                        Publish();
                    }

                    journal.Wait(TimeSpan.FromSeconds(1));
                }
            }
            catch (Exception ex) when (ex is JournalException or IOException or UnauthorizedAccessException or DllNotFoundException)
            {
                var wait = streak.Failed(ex);
                foreach (var name in _engine.RuleNames)
                {
                    State.SetCheck(CheckPrefix + name, CheckState.Unknown, $"cannot read the journal: {ex.Message}");
                }

                ct.WaitHandle.WaitOne(wait); // this reader is a thread of its own: a blocking wait, ended by a stop
            }
        }
    }

    private static JournalReader Open(JournalOptions o)
    {
        var journal = o.Files.Count > 0 ? JournalReader.OpenFiles(o.Files) : JournalReader.OpenSystem();
        try
        {
            foreach (var unit in o.Units)
            {
                journal.AddMatch("_SYSTEMD_UNIT", unit);
            }

            if (o.Kernel)
            {
                journal.AddDisjunction();
                journal.AddMatch("_TRANSPORT", "kernel");
            }

            return journal;
        }
        catch
        {
            journal.Dispose();
            throw;
        }
    }

    // live: the daemon following the journal (each event-rule match is also a Kubernetes Event); not for `check`'s look back.
    private void Observe(JournalReader journal, bool live = true)
    {
        var line = new JournalLine(journal.RealtimeMicros(), journal.Field("MESSAGE") ?? string.Empty,
            journal.Field("_SYSTEMD_UNIT"), journal.Field("SYSLOG_IDENTIFIER"), journal.Field("_TRANSPORT") == "kernel");
        List<JournalRuleOptions> events;
        lock (_lock)
        {
            events = _engine.Observe(line);
        }

        if (live && nodeEvents is not null)
        {
            foreach (var rule in events)
            {
                nodeEvents.Record(rule.EventReason.Length > 0 ? rule.EventReason : ConditionFamilies.Pascal(rule.Name), line.Message);
            }
        }
    }

    /// <summary>
    /// For the one-shot `check`: the rules fed with the last <paramref name="lookback"/> of the journal (no cursor read
    /// or saved, the daemon's own position is left alone), so the next run judges what happened recently.
    /// </summary>
    public Task ReadRecentAsync(TimeSpan lookback, CancellationToken ct) => Task.Run(() =>
    {
        using var journal = Open(options.Value);
        journal.SeekRealtime((Time.GetUtcNow() - lookback).ToUnixTimeMilliseconds() * 1000);
        while (!ct.IsCancellationRequested && journal.Next())
        {
            Observe(journal, live: false);
        }
    }, ct);

    private void Position(JournalReader journal, bool startAtHead)
    {
        string? cursor;
        try
        {
            cursor = new CursorStore(CursorFile).Load();
        }
        catch (InvalidDataException ex)
        {
            Log.CursorUnreadable(logger, ex.Message);
            cursor = null;
        }

        if (cursor is not null)
        {
            if (journal.SeekCursor(cursor) == CursorSeek.Unknown)
            {
                Log.CursorUnknown(logger, CursorFile);
            }

            return;
        }

        if (startAtHead)
        {
            journal.SeekHead();
        }
        else
        {
            journal.SeekTail(); // a fresh node-agent judges what happens from now on, not years of history
        }
    }

    // The rule state is written before the cursor: after a crash, an entry is at worst counted twice, never lost.
    private void SaveCursor(string cursor)
    {
        Directory.CreateDirectory(node.Value.StateDirectory);
        string rules;
        lock (_lock)
        {
            rules = System.Text.Json.JsonSerializer.Serialize(_engine.Snapshot(), RuleSnapshotJson.Default.ListRuleSnapshot);
        }

        DurableFile.Write(RulesFile, rules);
        new CursorStore(CursorFile).Save(cursor);
    }

    private void LoadRuleState()
    {
        if (!File.Exists(RulesFile))
        {
            return;
        }

        try
        {
            var snapshot = System.Text.Json.JsonSerializer.Deserialize(File.ReadAllText(RulesFile), RuleSnapshotJson.Default.ListRuleSnapshot) ?? [];
            lock (_lock)
            {
                _engine.Restore(snapshot);
            }
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or IOException)
        {
            Log.RuleStateUnreadable(logger, RulesFile, ex.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.JournalRuleStateUnreadable, LogLevel.Warning, "cannot read the saved rule state {File} ({Reason}): starting the rules afresh")]
        public static partial void RuleStateUnreadable(ILogger logger, string file, string reason);

        [LoggerMessage(EventIds.JournalReadFailed, LogLevel.Warning, "cannot read the journal: {Reason}; retrying")]
        public static partial void ReadFailed(ILogger logger, string reason);

        [LoggerMessage(EventIds.JournalReadingAgain, LogLevel.Information, "reading the journal again after {Failures} failed attempts ({Seconds:0}s)")]
        public static partial void ReadingAgain(ILogger logger, int failures, double seconds);

        [LoggerMessage(EventIds.JournalCursorUnreadable, LogLevel.Warning, "{Reason}: starting from the journal's tail")]
        public static partial void CursorUnreadable(ILogger logger, string reason);

        [LoggerMessage(EventIds.JournalCursorUnknown, LogLevel.Warning, "the journal no longer holds the entry saved in {File}: continuing from the nearest entry; some may have been missed")]
        public static partial void CursorUnknown(ILogger logger, string file);
    }
}
