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
    [Fact]
    public async Task OnAHostWithoutKubelet_AStartingAgentsFirstRun_WaitsForTheClusterView_AndSaysNotApplicable()
    {
        Assert.False(File.Exists("/lib/systemd/system/kubelet.service") || File.Exists("/etc/systemd/system/kubelet.service"), "this test needs a host without a kubelet unit");
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["cluster.json"], """{"kind":"List","items":[]}""");
        var kubernetes = new KubernetesOptions { Source = ClusterSource.File, File = dir["cluster.json"], FileInterval = TimeSpan.FromSeconds(1) };
        var options = Support.Options(new KubeletOptions { HealthzUrl = $"http://127.0.0.1:{Peer.FreePort()}/healthz", Timeout = TimeSpan.FromSeconds(5) });
        var state = Support.State();
        var view = new ClusterView(kubernetes, "builder-1.example", NullLogger<ClusterView>.Instance);
        using var noBus = new SystemdClient($"unix:path={dir["no-bus"]}", TimeSpan.FromSeconds(1)); // no systemd here: the unit files decide
        var check = new KubeletCheck(noBus, new SimpleHttp(), options, state, TimeProvider.System, NullLogger<KubeletCheck>.Instance, view);

        // The check runs first, as at start-up; the view is read a moment later. Its first run must not probe a
        // kubelet this host never had (it used to report healthz "Connection refused" here).
        var run = check.RunGuardedAsync(CancellationToken.None);
        await Task.Delay(300);
        await view.StartAsync(CancellationToken.None);
        try
        {
            await run;
            var healthz = state.GetCheck(KubeletCheck.Healthz)!;
            Assert.Equal((CheckState.Unknown, "not applicable on this host (no kubelet.service)"), (healthz.State, healthz.Message));
        }
        finally
        {
            await view.StopAsync(CancellationToken.None);
        }
    }
}
