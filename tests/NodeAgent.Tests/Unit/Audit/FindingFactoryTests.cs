using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Tests.Unit.Audit;

/// <summary>The findings every kube-proxy audit makes alike, and the Service port names they are about.</summary>
public sealed class FindingFactoryTests
{
    [Fact]
    public void AFinding_CarriesItsAuditsCheck_AndItsDetailsInOrder()
    {
        var f = new FindingFactory("kube-proxy.test").Make("stale-rule", Severity.Warning, "subject", "message", ("destination", "10.0.0.1:80/tcp"), ("line", "7"));
        Assert.Equal(("kube-proxy.test", "stale-rule", Severity.Warning, "subject", "message"), (f.Check, f.Kind, f.Severity, f.Subject, f.Message));
        Assert.Equal(["destination", "line"], f.Details.Keys);
        Assert.Equal("7", f.Details["line"]);
    }

    [Fact]
    public void NodePortForbidden_NamesThePortAndItsNodePort()
    {
        var f = new FindingFactory("kube-proxy.iptables").NodePortForbidden("tool-a/web:http", 30080);
        Assert.Equal(("nodeport-forbidden", Severity.Warning, "tool-a/web:http"), (f.Kind, f.Severity, f.Subject));
        Assert.Equal("tool-a/web:http has NodePort 30080; policy keeps NodePorts at 0", f.Message);
        Assert.Equal("30080", f.Details["node_port"]);
    }

    [Fact]
    public void AServicePortName_IsNamespaceNameAndPort_WithoutAColonForAnUnnamedPort()
    {
        var svc = new ServiceSpec("tool-a", "web", "ClusterIP", "10.96.0.1", [], [], [], false, false);
        Assert.Equal("tool-a/web:http", ServicePortName.Of(svc, new ServicePortSpec("http", 80, "TCP", 0)));
        Assert.Equal("tool-a/web", ServicePortName.Of(svc, new ServicePortSpec(string.Empty, 80, "TCP", 0)));
        Assert.Equal(["cluster IP", "external IP", "load balancer IP", "node port"], Enum.GetValues<ServiceDestination>().Select(d => d.Text()));
    }
}
