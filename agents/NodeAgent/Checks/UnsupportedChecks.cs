using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.NodeAgent.Audit.Iptables;

namespace Toolforge.Agents.NodeAgent.Checks;

/// <summary>On Windows the Linux-only checks say so instead of failing.</summary>
internal sealed class UnsupportedChecks(AgentState state) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var check in new[] { KubeletCheck.Unit, DockerCheck.Unit, NatAudit.Check })
        {
            state.SetCheck(check, Toolforge.Agents.Contracts.V1.CheckState.Unknown, "unsupported on this platform");
        }

        return Task.CompletedTask;
    }
}
