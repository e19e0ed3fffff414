using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.State;

/// <summary>
/// What a report changes against the agent's last <em>stored</em> state: the state to store (findings keep when they
/// were first seen; those of a check without a verdict yet are kept as they were), the checks whose state changed (new
/// checks included) and the findings that went away. No I/O;
/// the moment comes in as <c>now</c>. Since the base is what is stored, a report refused by the store and sent again
/// yields the same changes the second time.
/// </summary>
internal static class ReportDiff
{
    /// <summary>The outcome: <see cref="Stored"/> is what the agents row holds afterwards.</summary>
    public sealed record Result(ReportRequest Stored, IReadOnlyList<CheckResult> ChangedChecks, IReadOnlyList<Finding> Resolved);

    public static Result Compute(ReportRequest? previous, ReportRequest report, Timestamp now)
    {
        var stored = new ReportRequest { Node = report.Node, Agent = report.Agent, AgentVersion = report.AgentVersion, SentAt = report.SentAt };
        stored.Checks.AddRange(report.Checks);

        // The images its runtime holds (issue 27): a report that did not list them (the runtime did not answer, the agent
        // just started) keeps those stored, so the registry's retention never takes "not listed" for "holds nothing".
        var images = report.ImagesAt is not null ? report : previous;
        if (images?.ImagesAt is not null)
        {
            stored.Images.AddRange(images.Images);
            stored.PodDigests.AddRange(images.PodDigests);
            stored.PodsAt = images.PodsAt;
            stored.RunsPods = images.RunsPods;
            stored.ImagesAt = images.ImagesAt;
        }

        var before = new Dictionary<string, Finding>(StringComparer.Ordinal);
        if (previous is not null)
        {
            foreach (var f in previous.Findings)
            {
                before[Key(f)] = f;
            }
        }

        foreach (var f in report.Findings)
        {
            var copy = f.Clone();
            copy.FirstSeen = before.Remove(Key(f), out var old) && old.FirstSeen is not null ? old.FirstSeen : now;
            copy.LastSeen = now;
            stored.Findings.Add(copy);
        }

        // A check in the report without a verdict (unknown: not run yet since the agent started, or it could not run)
        // says nothing about its findings: they stay as stored, first and last sighting kept, instead of resolving. An
        // agent's restart or upgrade (its first report comes before its audits ran) then neither resolves a finding
        // (and its alert, and an admin's acknowledgement of it) nor makes it a new one when the audit reports it again.
        // A check the report no longer has (turned off) still resolves them.
        // Not a check that does not apply here (that one resolves its findings), and not one that reports findings of its
        // own in this very report (then those are its findings): only a check with no verdict and nothing to say keeps
        // what was stored.
        var reporting = report.Findings.Select(f => f.Check).ToHashSet(StringComparer.Ordinal);
        var undecided = report.Checks.Where(c => c.State == CheckState.Unknown && !Common.Checks.CheckDetails.IsNotApplicable(c) && !reporting.Contains(c.Name))
            .Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var (key, f) in before.Where(kv => undecided.Contains(kv.Value.Check)).ToList())
        {
            stored.Findings.Add(f.Clone());
            before.Remove(key);
        }

        var previousChecks = new Dictionary<string, CheckState>(StringComparer.Ordinal);
        if (previous is not null)
        {
            foreach (var c in previous.Checks)
            {
                previousChecks[c.Name] = c.State;
            }
        }

        var changed = report.Checks.Where(c => !previousChecks.TryGetValue(c.Name, out var p) || p != c.State).ToList();
        return new Result(stored, changed, [.. before.Values]);
    }

    private static string Key(Finding f) => f.Kind + "\u0000" + f.Subject;
}
