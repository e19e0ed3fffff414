using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>kube-proxy's rules in a real kernel (a network namespace of the test's own), audited by the daemon's checks.</summary>
public sealed partial class KubeProxyLiveTests
{
    private sealed class NoHttp : IHttpClientFactory
    {
        public HttpClient CreateClient(string name) => new();
    }

    private static async Task<(FakeKubeApiServer Api, ClusterView View, TempDir Dir)> ClusterAsync(string kubectlJson)
    {
        var api = await FakeKubeApiServer.StartAsync();
        api.PutKubectlJson(kubectlJson);

        api.Put(FakeKubeApiServer.Node(NftReferenceData.Node));
        var dir = new TempDir();
        var view = new ClusterView(new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]) }, NftReferenceData.Node, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => view.Synced && view.ServiceCount > 0, TimeSpan.FromSeconds(10)));
        return (api, view, dir);
    }

    [Fact]
    public async Task Nftables_LoadedIntoAKernel_IsClean_ThenAMissingElementAndAChangedDnatAreFound()
    {
        Peer.Require("nft", "nftables");
        await using var ns = await NetNamespace.CreateAsync();
        await ns.RunAsync("nft", "-f", Path.Combine(NftReferenceData.Dir, "overall-rules.nft"));
        var (api, view, dir) = await ClusterAsync(NftReferenceData.KubectlJson("overall-rules"));
        await using var _ = api;
        using var __ = dir;

        var options = Support.Options(new NftablesOptions { Command = "ip", Arguments = [.. ns.Exec("nft", "-j", "list", "table", "ip", "kube-proxy")], Ipv6Arguments = [], ForbidNodePorts = false });
        var state = Support.State();
        var check = new NftablesAuditCheck(options, view, new ProxyModeDetector(Support.Options(new KubeProxyOptions { Mode = KubeProxyMode.Nftables }), options, new NoHttp(), TimeProvider.System, NullLogger<ProxyModeDetector>.Instance),
            state, TimeProvider.System, NullLogger<NftablesAuditCheck>.Instance) { ConfirmRuns = 1 };

        await check.RunGuardedAsync(CancellationToken.None);
        var clean = state.GetCheck(NftAudit.Check)!;
        Assert.True(clean.State == CheckState.Ok, clean.Message + string.Join("\n", state.GetFindings().Select(f => f.Message)));
        Assert.StartsWith("clean:", clean.Message, StringComparison.Ordinal);

        await ns.RunAsync("nft", "delete", "element", "ip", "kube-proxy", "service-ips", "{ 172.30.0.44 . tcp . 80 }");
        await check.RunGuardedAsync(CancellationToken.None);
        var missing = Assert.Single(state.GetFindings(NftAudit.Check));
        Assert.Equal("missing-rule", missing.Kind);
        Assert.Equal("ns4/svc4:p80 172.30.0.44:80/tcp", missing.Subject);

        const string chain = "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80";
        await ns.RunAsync("nft", "flush", "chain", "ip", "kube-proxy", chain);
        await ns.RunAsync("nft", "add", "rule", "ip", "kube-proxy", chain, "meta", "l4proto", "tcp", "dnat", "to", "10.180.0.99:80");
        await check.RunGuardedAsync(CancellationToken.None);
        var findings = state.GetFindings(NftAudit.Check).OrderBy(f => f.Kind, StringComparer.Ordinal).ToList();
        Assert.Equal(["missing-rule", "wrong-backend"], findings.Select(f => f.Kind));
        Assert.Equal("ns1/svc1:p80", findings[1].Subject);
        Assert.Contains("10.180.0.99:80", findings[1].Message, StringComparison.Ordinal);
        await view.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Nftables_GeneratedForASetOfServices_IsClean_AndAServiceWithoutItsElementIsNamed()
    {
        // The generator the benchmark loads 10,000 Services with: what the audit expects, as a kernel lists it.
        Peer.Require("nft", "nftables");
        await using var ns = await NetNamespace.CreateAsync();
        var services = KubeProxyRules.Many(40);
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["rules.nft"], KubeProxyNftRules.Generate(services));
        await ns.RunAsync("nft", "-f", dir["rules.nft"]);
        await using var api = await FakeKubeApiServer.StartAsync();
        api.Put(FakeKubeApiServer.Node(NftReferenceData.Node));
        foreach (var s in services)
        {
            api.Put(FakeKubeApiServer.Service(s.Namespace, s.Name, s.ClusterIP, (s.PortName, s.Port, s.Protocol)));
            if (s.Endpoints.Length > 0)
            {
                api.Put(FakeKubeApiServer.Slice(s.Namespace, s.Name, [.. s.Endpoints.Select(e => e.Split(':')[0])], (s.PortName, int.Parse(s.Endpoints[0].Split(':')[1], System.Globalization.CultureInfo.InvariantCulture), s.Protocol)));
            }
        }

        var view = new ClusterView(new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]) }, NftReferenceData.Node, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        Assert.True(await Peer.EventuallyAsync(() => view.Synced && view.ServiceCount == services.Count, TimeSpan.FromSeconds(10)));
        var options = Support.Options(new NftablesOptions { Command = "ip", Arguments = [.. ns.Exec("nft", "-j", "list", "table", "ip", "kube-proxy")], Ipv6Arguments = [], ForbidNodePorts = false });
        var state = Support.State();
        var check = new NftablesAuditCheck(options, view, new ProxyModeDetector(Support.Options(new KubeProxyOptions { Mode = KubeProxyMode.Nftables }), options, new NoHttp(), TimeProvider.System, NullLogger<ProxyModeDetector>.Instance),
            state, TimeProvider.System, NullLogger<NftablesAuditCheck>.Instance) { ConfirmRuns = 1 };
        await check.RunGuardedAsync(CancellationToken.None);
        Assert.True(state.GetCheck(NftAudit.Check)!.State == CheckState.Ok, string.Join("\n", state.GetFindings().Select(f => f.Message)));

        var victim = services.First(s => s.Endpoints.Length > 0 && s.PortName.Length > 0);
        await ns.RunAsync("nft", "delete", "element", "ip", "kube-proxy", "service-ips", $"{{ {victim.ClusterIP} . {victim.Protocol.ToLowerInvariant()} . {victim.Port} }}");
        await check.RunGuardedAsync(CancellationToken.None);
        var missing = Assert.Single(state.GetFindings(NftAudit.Check));
        Assert.Equal("missing-rule", missing.Kind);
        Assert.Equal($"{victim.Namespace}/{victim.Name}:{victim.PortName} {victim.ClusterIP}:{victim.Port}/{victim.Protocol.ToLowerInvariant()}", missing.Subject);
        await view.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task KubeServicesInBothIptablesBackends_IsAMixedBackendsFinding()
    {
        Peer.Require("iptables-legacy", "iptables");
        await using var ns = await NetNamespace.CreateAsync();
        await ns.RunAsync("iptables-nft", "-t", "nat", "-N", "KUBE-SERVICES");
        await ns.RunAsync("iptables-legacy", "-t", "nat", "-N", "KUBE-SERVICES");
        await ns.RunAsync("iptables-legacy", "-t", "nat", "-N", "KUBE-SVC-NPX46M4PTMTKRN6Y");
        var (api, view, dir) = await ClusterAsync(NftReferenceData.KubectlJson("sync-repeated-initial"));
        await using var _ = api;
        using var __ = dir;

        var options = Support.Options(new IptablesOptions { Command = "ip", Arguments = [.. ns.Exec("iptables-nft-save")], ForbidNodePorts = false });
        var state = Support.State();
        var check = new IptablesAuditCheck(options, view, state, TimeProvider.System, NullLogger<IptablesAuditCheck>.Instance) { ConfirmRuns = 1 };
        await check.RunGuardedAsync(CancellationToken.None);
        var mixed = Assert.Single(state.GetFindings(NatAudit.Check), f => f.Kind == "mixed-iptables-backends");
        Assert.Contains("iptables-nft", mixed.Message, StringComparison.Ordinal);
        Assert.Contains("iptables-legacy", mixed.Message, StringComparison.Ordinal);
        Assert.Contains("KUBE-SVC-NPX46M4PTMTKRN6Y", mixed.Message, StringComparison.Ordinal);
        Assert.Equal("iptables-nft,iptables-legacy", mixed.Details["backends"]);

        // Only the backend kube-proxy uses: no such finding.
        await using var clean = await NetNamespace.CreateAsync();
        await clean.RunAsync("iptables-nft", "-t", "nat", "-N", "KUBE-SERVICES");
        var state2 = Support.State();
        var check2 = new IptablesAuditCheck(Support.Options(new IptablesOptions { Command = "ip", Arguments = [.. clean.Exec("iptables-nft-save")], ForbidNodePorts = false }),
            view, state2, TimeProvider.System, NullLogger<IptablesAuditCheck>.Instance) { ConfirmRuns = 1 };
        await check2.RunGuardedAsync(CancellationToken.None);
        Assert.DoesNotContain(state2.GetFindings(NatAudit.Check), f => f.Kind == "mixed-iptables-backends");
        await view.StopAsync(CancellationToken.None);
    }
}
