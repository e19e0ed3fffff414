using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Checks.Systemd;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Checks.Kubelet;
using Toolforge.Agents.NodeAgent.Checks.Docker;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class SystemdTests
{
    /// <summary>The Services file replaced under the running agent by a Pod list: the view says so and keeps what it read last, never an empty cluster.</summary>
    [Fact]
    public async Task AServicesFileReplacedByAPodList_IsAProblem_AndTheLastServicesStay()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["cluster.json"], NftReferenceData.KubectlJson("overall-rules"));
        var view = new ClusterView(new KubernetesOptions { Source = ClusterSource.File, File = dir["cluster.json"], FileInterval = TimeSpan.FromMilliseconds(200) }, "node-1", NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        try
        {
            Assert.True(await Peer.EventuallyAsync(() => view.ServiceCount > 0, TimeSpan.FromSeconds(10)), view.Problem);
            var services = view.ServiceCount;
            await File.WriteAllTextAsync(dir["cluster.json.new"], """{ "apiVersion": "v1", "kind": "List", "items": [ { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p", "namespace": "tool-a" } } ] }""");
            File.Move(dir["cluster.json.new"], dir["cluster.json"], overwrite: true);
            Assert.True(await Peer.EventuallyAsync(() => view.Problem?.Contains("holds no Service (it holds 1 Pod)", StringComparison.Ordinal) == true, TimeSpan.FromSeconds(10)), view.Problem);
            Assert.Equal(services, view.ServiceCount);
        }
        finally
        {
            await view.StopAsync(CancellationToken.None);
        }
    }
}
