using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Checks.Docker;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class LiveChecksTests
{
    [Fact]
    public async Task ClusterView_FollowsAWatchEventWithinOneSecond()
    {
        await using var api = await FakeKubeApiServer.StartAsync();
        using var dir = new TempDir();
        api.Put(FakeKubeApiServer.Node("worker-1"));
        api.Put(FakeKubeApiServer.Namespace("tool-a"));
        var view = await StartViewAsync(api, dir);
        Assert.Equal("True", view.Node!.Status!.Conditions!.Single(c => c.Type == "Ready").Status);

        var sw = Stopwatch.StartNew();
        api.Put(FakeKubeApiServer.Service("tool-a", "new", "10.96.0.77", ("http", 80, "TCP")));
        Assert.True(await Peer.EventuallyAsync(() => view.Model().Services.Any(s => s.Name == "new"), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(5)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"the view followed the watch after {sw.Elapsed}");

        sw.Restart();
        api.Put(FakeKubeApiServer.Node("worker-1", ready: false));
        Assert.True(await Peer.EventuallyAsync(() => view.Node?.Status?.Conditions?.Single(c => c.Type == "Ready").Status == "False", TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(5)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"the node change arrived after {sw.Elapsed}");

        api.Delete("services", "tool-a", "new");
        Assert.True(await Peer.EventuallyAsync(() => view.Model().Services.Count == 0, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(5)));
        await view.StopAsync(CancellationToken.None);
    }
}
