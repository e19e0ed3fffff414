using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Journal;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Checks.Docker;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class PolicyAndJournalTests
{
    [Fact]
    public void RuleEngine_EventWindow_AndConditionQuietPeriod_FollowTheClock()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var engine = new JournalRuleEngine([
            new JournalRuleOptions { Name = "oom", Type = "event", Pattern = "Killed process", Threshold = 2, Window = TimeSpan.FromMinutes(10), Sources = ["kernel"] },
            new JournalRuleOptions { Name = "pleg", Type = "condition", Pattern = "PLEG is not healthy", QuietPeriod = TimeSpan.FromMinutes(5) },
        ]);
        long Us(DateTimeOffset t) => t.ToUnixTimeMilliseconds() * 1000;
        engine.Observe(new JournalLine(Us(time.GetUtcNow()), "Killed process 1", null, "kernel", Kernel: true));
        engine.Observe(new JournalLine(Us(time.GetUtcNow()), "Killed process 2 (not from the kernel)", "app.service", "app", Kernel: false));
        Assert.Equal(CheckState.Warning, engine.Evaluate(time.GetUtcNow()).Single(s => s.Rule == "oom").State);
        engine.Observe(new JournalLine(Us(time.GetUtcNow()), "Killed process 3", null, "kernel", Kernel: true));
        engine.Observe(new JournalLine(Us(time.GetUtcNow()), "PLEG is not healthy: pleg was last seen active 3m0s ago", "kubelet.service", "kubelet", Kernel: false));
        var states = engine.Evaluate(time.GetUtcNow());
        Assert.Equal(CheckState.Failing, states.Single(s => s.Rule == "oom").State);
        Assert.Equal(CheckState.Failing, states.Single(s => s.Rule == "pleg").State);

        time.Advance(TimeSpan.FromMinutes(11));
        states = engine.Evaluate(time.GetUtcNow());
        Assert.Equal(CheckState.Ok, states.Single(s => s.Rule == "oom").State);
        Assert.Equal(CheckState.Ok, states.Single(s => s.Rule == "pleg").State);
        Assert.StartsWith("quiet for 5 min", states.Single(s => s.Rule == "pleg").Message, StringComparison.Ordinal);
    }
}
