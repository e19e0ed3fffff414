using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>An audit for the mode kube-proxy does not run in is clean and says which mode it runs in.</summary>
public sealed class AuditPreconditionsTests
{
    [Fact]
    public void AnAuditForTheOtherMode_IsNotInUse_WithoutFindings()
    {
        var state = new AgentState(TimeProvider.System, NullLogger<AgentState>.Instance);
        state.SetFindings("kube-proxy.iptables", [new Finding { Kind = "missing-rule", Subject = "a", Check = "kube-proxy.iptables" }]);

        Assert.False(AuditPreconditions.InUse(state, "kube-proxy.iptables", KubeProxyMode.Iptables, KubeProxyMode.Nftables, "configured"));
        var check = state.GetCheck("kube-proxy.iptables");
        Assert.Equal((CheckState.Ok, "not in use: kube-proxy runs in nftables mode (configured)"), (check!.State, check.Message));
        Assert.Empty(state.GetFindings("kube-proxy.iptables"));

        Assert.True(AuditPreconditions.InUse(state, "kube-proxy.nftables", KubeProxyMode.Nftables, KubeProxyMode.Nftables, "/proxyMode"));
        Assert.Null(state.GetCheck("kube-proxy.nftables"));
    }

    [Fact]
    public void TheMessage_IsTheCleanLine_OrTheConfirmedKinds_AndWhatIsPending()
    {
        Assert.Equal("clean: 5 rules", FindingConfirmer.Message([], 0, "clean: 5 rules"));
        Finding[] two = [new() { Kind = "missing-rule", Subject = "a" }, new() { Kind = "missing-rule", Subject = "b" }];
        Assert.Equal("2 missing-rule; 1 more seen by the last audit only (not confirmed yet)", FindingConfirmer.Message(two, 3, "clean"));
    }
}
