using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Reporting;

namespace Toolforge.Agents.NodeAgent.Checks;

/// <summary>Off Linux, a Linux-only check (D-Bus, iptables) says so instead of failing.</summary>
internal sealed class UnsupportedCheck(AgentState state, string check) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        state.SetCheck(check, Toolforge.Agents.Contracts.V1.CheckState.Unknown, "unsupported on this platform");
        return Task.CompletedTask;
    }
}
