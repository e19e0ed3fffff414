using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Conntrack;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class ConntrackTests
{
    [Fact]
    public async Task AFlowAnsweredByAGoneEndpoint_IsAFindingAfterTheGracePeriod_AndRemediationDeletesExactlyIt()
    {
        Peer.Require("conntrack", "conntrack");
        await using var ns = await NetNamespace.CreateAsync();
        await Insert(ns, "10.0.0.5", 5000, "172.30.0.10", 53, "10.180.0.1", 53);   // answered by an endpoint
        await Insert(ns, "10.0.0.6", 5001, "172.30.0.10", 53, "10.180.0.9", 53);   // answered by a pod that is gone
        await Insert(ns, "10.0.0.7", 5002, "192.0.2.1", 53, "192.0.2.1", 53);      // not to a Service
        var (api, view, dir) = await ClusterAsync();
        await using var _ = api;
        using var __ = dir;

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = Support.State(time);
        var check = Check(ns, view, state, time, remediate: false);

        await check.RunGuardedAsync(CancellationToken.None);
        var first = state.GetCheck(ConntrackAudit.Check)!;
        Assert.Equal(CheckState.Ok, first.State);
        Assert.Contains("1 wrong for less than 30s", first.Message, StringComparison.Ordinal);
        Assert.Empty(state.GetFindings(ConntrackAudit.Check));

        time.Advance(TimeSpan.FromSeconds(31));
        await check.RunGuardedAsync(CancellationToken.None);
        var f = Assert.Single(state.GetFindings(ConntrackAudit.Check));
        Assert.Equal("stale-conntrack", f.Kind);
        Assert.Equal("kube-system/kube-dns:dns udp 10.0.0.6:5001", f.Subject);
        Assert.Contains("10.180.0.9:53", f.Message, StringComparison.Ordinal);
        Assert.Contains("10.180.0.1:53", f.Message, StringComparison.Ordinal);
        Assert.Equal("31", f.Details["age_seconds"]);
        Assert.Equal(CheckState.Failing, state.GetCheck(ConntrackAudit.Check)!.State);

        // Remediation deletes that entry, and only it.
        var fix = Check(ns, view, state, time, remediate: true);
        await fix.RunGuardedAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(31));
        await fix.RunGuardedAsync(CancellationToken.None);
        var left = (await ns.RunAsync("conntrack", "-L", "-o", "extended", "-p", "udp")).Stdout;
        Assert.DoesNotContain("src=10.0.0.6 ", left, StringComparison.Ordinal);
        Assert.Contains("src=10.0.0.5 ", left, StringComparison.Ordinal);
        Assert.Contains("src=10.0.0.7 ", left, StringComparison.Ordinal);
        var ev = Assert.Single(state.Snapshot(out var _).Events, e => e.Kind == "conntrack-deleted");
        Assert.Contains("10.0.0.6:5001", ev.Message, StringComparison.Ordinal);

        // The Service loses every endpoint: the flow that was right is now stale too.
        api.Put(FakeKubeApiServer.Slice("kube-system", "kube-dns", [], ("dns", 53, "UDP")));
        Assert.True(await Peer.EventuallyAsync(() => view.Model().Slices.All(s => s.Endpoints.Count == 0), TimeSpan.FromSeconds(10)));
        await check.RunGuardedAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(31));
        await check.RunGuardedAsync(CancellationToken.None);
        var none = Assert.Single(state.GetFindings(ConntrackAudit.Check));
        Assert.Equal("kube-system/kube-dns:dns udp 10.0.0.5:5000", none.Subject);
        Assert.Contains("has no endpoint", none.Message, StringComparison.Ordinal);
        await view.StopAsync(CancellationToken.None);
    }
}
