using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.State;

/// <summary>The latest report of one agent on one node.</summary>
internal sealed record AgentRecord(AgentKind Kind, string Version, DateTimeOffset LastReport, TimeSpan Heartbeat, ReportRequest State);

/// <summary>
/// Judges a node from its agents' latest reports. No I/O: the clock comes in as <c>now</c>.
/// <list type="bullet">
/// <item>missing: no agent reported for <c>missingAfter</c> (days, configured);</item>
/// <item>stale: no agent reported within 3 heartbeat intervals;</item>
/// <item>failing: some check is failing;</item>
/// <item>warning: some check is warning or unknown, or one of several agents went stale;</item>
/// <item>ok: otherwise.</item>
/// </list>
/// </summary>
internal static class NodeJudge
{
    public const int StaleAfterHeartbeats = 3;

    /// <param name="acknowledged">Whether an admin's acknowledgement holds for a finding of an agent: such findings
    /// are counted apart (<see cref="NodeSummary.AcknowledgedFindings"/>).</param>
    public static NodeSummary Summarize(string name, IReadOnlyCollection<AgentRecord> agents, IReadOnlySet<AgentKind> connected,
        DateTimeOffset now, TimeSpan missingAfter, Func<AgentKind, Finding, bool>? acknowledged = null)
    {
        var summary = new NodeSummary { Name = name };
        if (agents.Count == 0)
        {
            summary.State = NodeState.Missing;
            summary.Summary = "never reported";
            return summary;
        }

        var latest = agents.MaxBy(a => a.LastReport)!;
        summary.LastReport = Timestamp.FromDateTimeOffset(latest.LastReport);
        foreach (var a in agents.OrderBy(a => a.Kind))
        {
            summary.Agents.Add(new AgentInfo
            {
                Kind = a.Kind,
                Version = a.Version,
                LastReport = Timestamp.FromDateTimeOffset(a.LastReport),
                CommandsConnected = connected.Contains(a.Kind),
            });
        }

        CheckResult? worst = null;
        foreach (var a in agents)
        {
            // A check that does not apply on that host (the kubelet's on a builder) is shown, and judged as ok.
            foreach (var c in a.State.Checks.Where(c => !Common.Checks.CheckDetails.IsNotApplicable(c)))
            {
                switch (c.State)
                {
                    case CheckState.Failing:
                        summary.FailingChecks++;
                        break;
                    case CheckState.Warning or CheckState.Unknown:
                        summary.WarningChecks++;
                        break;
                    default:
                        break;
                }

                if (worst is null || Rank(c.State) > Rank(worst.State))
                {
                    worst = c;
                }
            }

            foreach (var f in a.State.Findings)
            {
                if (acknowledged is not null && acknowledged(a.Kind, f))
                {
                    summary.AcknowledgedFindings++;
                }
                else
                {
                    summary.Findings++;
                }
            }
        }

        var silentFor = now - latest.LastReport;
        if (silentFor > missingAfter)
        {
            summary.State = NodeState.Missing;
            summary.Summary = $"no report since {latest.LastReport:yyyy-MM-dd HH:mm}Z";
            return summary;
        }

        if (silentFor > StaleAfterHeartbeats * latest.Heartbeat)
        {
            summary.State = NodeState.Stale;
            summary.Summary = $"no report for {Human(silentFor)}";
            return summary;
        }

        var staleAgent = agents.FirstOrDefault(a => now - a.LastReport > StaleAfterHeartbeats * a.Heartbeat);
        if (summary.FailingChecks > 0)
        {
            summary.State = NodeState.Failing;
        }
        else if (summary.WarningChecks > 0 || staleAgent is not null)
        {
            summary.State = NodeState.Warning;
        }
        else
        {
            summary.State = NodeState.Ok;
        }

        summary.Summary = worst is not null && worst.State is not CheckState.Ok
            ? $"{worst.Name}: {worst.Message}"
            : staleAgent is not null
                ? $"{staleAgent.Kind.Name()} silent for {Human(now - staleAgent.LastReport)}"
                : string.Empty;
        return summary;
    }

    /// <summary>
    /// Until when <see cref="Summarize"/> gives the same result if nothing is reported: the next moment an agent or
    /// the node turns stale or missing. A node already stale (its summary says for how long) is judged every time.
    /// </summary>
    public static DateTimeOffset SameUntil(IReadOnlyCollection<AgentRecord> agents, DateTimeOffset now, TimeSpan missingAfter)
    {
        if (agents.Count == 0)
        {
            return DateTimeOffset.MaxValue;
        }

        var latest = agents.Max(a => a.LastReport);
        if (now - latest > missingAfter)
        {
            return DateTimeOffset.MaxValue; // "no report since <date>" stays as it is
        }

        var until = latest + missingAfter;
        foreach (var a in agents)
        {
            var staleAt = a.LastReport + StaleAfterHeartbeats * a.Heartbeat;
            if (now >= staleAt)
            {
                return now; // "silent for <how long>" changes with time
            }

            until = staleAt < until ? staleAt : until;
        }

        return until;
    }

    private static int Rank(CheckState s) => s switch
    {
        CheckState.Failing => 3,
        CheckState.Warning => 2,
        CheckState.Unknown => 1,
        _ => 0,
    };

    public static string Human(TimeSpan t) =>
        t.TotalDays >= 1 ? $"{(int)t.TotalDays}d{t.Hours}h"
        : t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes}m"
        : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes}m{t.Seconds}s"
        : $"{(int)t.TotalSeconds}s";
}
