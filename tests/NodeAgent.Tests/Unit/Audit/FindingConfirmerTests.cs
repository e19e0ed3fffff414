using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>The iptables and nftables checks' one audit-and-confirm: the daemon confirms across runs, the one-shot `check` by a second audit.</summary>
public sealed class FindingConfirmerTests
{
    private static Finding F(string kind, string subject) => new() { Kind = kind, Subject = subject, Severity = Severity.Error };

    private sealed class Audits(params List<Finding>?[] results)
    {
        public int Count { get; private set; }

        public Task<List<Finding>?> Next() => Task.FromResult(results[Count++]);
    }

    [Fact]
    public async Task TheDaemon_AuditsOnce_AndConfirmsOnlyWhatEarlierAuditsSaw()
    {
        var confirmer = new FindingConfirmer();
        var audits = new Audits([F("missing-rule", "a")], [F("missing-rule", "a"), F("stale-rule", "b")]);
        var first = await confirmer.AuditAsync(audits.Next, a => a, oneShot: false, TimeProvider.System, CancellationToken.None);
        Assert.Empty(first!.Value.Confirmed);
        var second = await confirmer.AuditAsync(audits.Next, a => a, oneShot: false, TimeProvider.System, CancellationToken.None);
        Assert.Equal(["a"], second!.Value.Confirmed.Select(f => f.Subject));
        Assert.Equal(2, audits.Count);
    }

    [Fact]
    public void TheFirstAuditSinceAStart_WithFindingsItCannotConfirmYet_IsUnknown_NotOk_AndLaterAuditsAreJudgedAsAlways()
    {
        // A restarted agent knows nothing of what it reported: "ok" would resolve its findings at the coordinator and
        // report them as new a minute later (the upgrade test saw their first-seen times reset).
        var confirmer = new FindingConfirmer();
        var seen = new List<Finding> { F("missing-rule", "a") };
        Assert.Equal(CheckState.Unknown, confirmer.StateAfter(confirmer.Confirm(seen), seen.Count));
        Assert.Equal(CheckState.Failing, confirmer.StateAfter(confirmer.Confirm(seen), seen.Count));
        Assert.Equal(CheckState.Ok, confirmer.StateAfter(confirmer.Confirm([]), 0));
        var fresh = new FindingConfirmer();
        Assert.Equal(CheckState.Ok, fresh.StateAfter(fresh.Confirm([]), 0)); // a clean first audit is ok at once
        var later = new FindingConfirmer();
        later.Confirm([]);
        Assert.Equal(CheckState.Ok, later.StateAfter(later.Confirm(seen), seen.Count)); // a new finding while running: not reported until confirmed, as before
    }

    [Fact]
    public async Task TheOneShotCheck_AuditsAgainAfterTheRecheckDelay_AndReportsWhatBothSaw()
    {
        var time = new FakeTimeProvider();
        var audits = new Audits([F("missing-rule", "a"), F("stale-rule", "b")], [F("missing-rule", "a")]);
        var run = new FindingConfirmer().AuditAsync(audits.Next, a => a, oneShot: true, time, CancellationToken.None);
        Assert.False(run.IsCompleted);
        time.Advance(FindingConfirmer.OneShotRecheck);
        var (audit, confirmed) = (await run)!.Value;
        Assert.Equal(2, audits.Count);
        Assert.Single(audit);
        Assert.Equal(["a"], confirmed.Select(f => f.Subject));
    }

    [Fact]
    public async Task TheOneShotCheck_WithACleanAudit_AnswersAtOnce_AndAFailedAuditIsNoResult()
    {
        var clean = new Audits(new List<Finding>());
        Assert.Empty((await new FindingConfirmer().AuditAsync(clean.Next, a => a, oneShot: true, new FakeTimeProvider(), CancellationToken.None))!.Value.Confirmed);
        Assert.Equal(1, clean.Count);

        Assert.Null(await new FindingConfirmer().AuditAsync(new Audits([null]).Next, a => a, oneShot: true, new FakeTimeProvider(), CancellationToken.None));
        var time = new FakeTimeProvider();
        var secondFails = new FindingConfirmer().AuditAsync(new Audits([F("missing-rule", "a")], null).Next, a => a, oneShot: true, time, CancellationToken.None);
        time.Advance(FindingConfirmer.OneShotRecheck);
        Assert.Null(await secondFails);
    }
}
