using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.NodeAgent.Remediation.Ladder;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests.Remediation;

/// <summary>The daemon's own wiring: the ladder's keys bound exactly through the real binder, its service resolved, a bad value named.</summary>
public sealed class LadderWiringTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private IHost Build(string remediation)
    {
        var path = _dir["node-agent-" + Guid.NewGuid().ToString("N")[..6] + ".json"];
        File.WriteAllText(path, $$$"""{"NodeAgent": {"NodeName": "tools-k8s-worker-nfs-3", "StateDirectory": "{{{_dir.Path}}}", "Remediation": {{{remediation}}} } }""");
        var builder = AgentDaemon.CreateBuilder(DaemonInfo.NodeAgent, path, NodeAgentHost.DefaultMetricsPort);
        NodeAgentHost.Configure(builder);
        return builder.Build();
    }

    [Fact]
    public void TheLadderKeys_AreBoundAsWritten_ListsReplaceTheDefaults_AndTheServiceResolves()
    {
        using var host = Build("""
            {"Drain": {"Enabled": true}, "Ladder": {"Enabled": true, "RenewInterval": "00:01:00",
              "Triggers": {"StuckProcesses": {"Enabled": true, "After": "00:15:00"}},
              "HardReset": {"Command": ["/usr/local/sbin/wmcs-force-reboot", "--yes"]},
              "Holds": {"LockFiles": ["/var/lib/puppet/state/agent_disabled.lock"]},
              "Recover": {"HealthyFor": "00:20:00", "Checks": ["node.dns"]}}}
            """);
        Assert.Empty(BoundConfig.Problems(host.Services));
        var o = host.Services.GetRequiredService<IOptions<RemediationOptions>>().Value.Ladder;
        Assert.Equal((true, TimeSpan.FromMinutes(1), true, TimeSpan.FromMinutes(15), false), (o.Enabled, o.RenewInterval, o.Triggers.StuckProcesses.Enabled, o.Triggers.StuckProcesses.After, o.Triggers.Kubelet.Enabled));
        Assert.Equal(["/usr/local/sbin/wmcs-force-reboot", "--yes"], o.HardReset.Command);
        Assert.Equal(["/var/lib/puppet/state/agent_disabled.lock"], o.Holds.LockFiles); // replaced, not appended to the two defaults
        Assert.Equal(["node.dns"], o.Recover.Checks);
        Assert.Equal(TimeSpan.FromMinutes(20), o.Recover.HealthyFor);
        Assert.NotNull(host.Services.GetRequiredService<LadderService>());
        Assert.IsType<DBusLadderMachine>(host.Services.GetRequiredService<ILadderMachine>());
        Assert.Contains(host.Services.GetServices<IHostedService>(), s => s is LadderService);
    }

    [Fact]
    public void ABadLadderValue_AnUnknownKey_AndTheLadderWithoutTheDrain_AreNamed()
    {
        using var host = Build("""{"Ladder": {"Enabled": true, "Intervall": "00:00:10", "HardReset": {"Command": ["force-reboot"]}, "Recover": {"HealthyFor": "-00:01:00", "Checks": ["node.dns", "node dns", "node.dns", ""]}}}""");
        var problems = BoundConfig.Problems(host.Services);
        Assert.Contains(problems, p => p.Contains("Intervall", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("NodeAgent:Remediation:Ladder:HardReset:Command: the program must be an absolute path", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("NodeAgent:Remediation:Ladder:Recover:HealthyFor", StringComparison.Ordinal));
        Assert.Contains("NodeAgent:Remediation:Ladder:Recover:Checks: \"node dns\" cannot be a check's name (1-128 characters: a letter or digit, then letters, digits and ._/:-)", problems);
        Assert.Contains("NodeAgent:Remediation:Ladder:Recover:Checks: \"\" cannot be a check's name (1-128 characters: a letter or digit, then letters, digits and ._/:-)", problems);
        Assert.DoesNotContain(problems, p => p.Contains("\"node.dns\"", StringComparison.Ordinal)); // named twice: harmless, as before
        Assert.Contains(problems, p => p.Contains("NodeAgent:Remediation:Ladder:Enabled: needs NodeAgent:Remediation:Drain:Enabled true", StringComparison.Ordinal));
    }
}
