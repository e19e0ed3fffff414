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
