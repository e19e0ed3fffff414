using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Kubernetes.Api;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The node-agent's own API client (no KubernetesClient: it is NativeAOT-compiled): a kubelet-style kubeconfig over
/// HTTPS with a client certificate, kubeconfig errors that name the file and the problem, and a watch that expires
/// (410) making the view list again.
/// </summary>
public sealed class KubeApiClientTests
{
    private const string Node = "worker-tls";

    private static string Kubeconfig(string server, string cluster, string user) => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: default-cluster
          cluster:
            server: {server}
        {cluster}
        contexts:
        - name: default-context
          context:
            cluster: default-cluster
            namespace: default
            user: default-auth
        current-context: default-context
        preferences: {"{}"}
        users:
        - name: default-auth
          user:
        {user}
        """;

    [Fact]
    public async Task AKubeletKubeconfig_WithRelativeCertificateFiles_ListsAndWatches_OverHttps_PresentingTheNodeCertificate()
    {
        using var pki = DevPki.Create("kubernetes CA");
        using var dir = new TempDir();
        await using var api = await FakeKubeApiServer.StartAsync((pki.Issue("kube-apiserver", server: true), pki.Ca));
        api.Put(FakeKubeApiServer.Node(Node));
        api.Put(FakeKubeApiServer.Service("tool-a", "web", "10.96.0.10", ("http", 80, "TCP")));
        pki.WriteCa(dir["pki"]);
        DevPki.WriteTo(dir["pki"], "kubelet-client-current", pki.Issue("system:node:" + Node));
        // As the kubelet's kubeconfig has them: paths relative to the kubeconfig's own directory.
        File.WriteAllText(dir["kubelet.conf"], Kubeconfig(api.Url,
            "    certificate-authority: pki/ca.pem",
            "      client-certificate: pki/kubelet-client-current.pem\n      client-key: pki/kubelet-client-current.key"));

        var view = new ClusterView(new KubernetesOptions { Kubeconfig = dir["kubelet.conf"], WatchTimeout = TimeSpan.FromSeconds(30) }, Node, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        try
        {
            Assert.True(await view.WaitSettledAsync(TimeSpan.FromSeconds(15), CancellationToken.None), "not synced: " + view.Problem);
            Assert.Equal(Node, view.Node?.Metadata?.Name);
            Assert.Equal("10.96.0.10", Assert.Single(view.Model().Services).ClusterIP);

            api.Put(FakeKubeApiServer.Service("tool-b", "api", "10.96.0.11", ("http", 80, "TCP")));
            Assert.True(await Peer.EventuallyAsync(() => view.ServiceCount == 2, TimeSpan.FromSeconds(10)), "the watch did not deliver the new Service");
            lock (api.ClientCertificates)
            {
                Assert.NotEmpty(api.ClientCertificates);
                Assert.All(api.ClientCertificates, s => Assert.Equal("CN=system:node:" + Node, s));
            }
        }
        finally
        {
            await view.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task EmbeddedData_AndAServerFromAnotherCa_IsRefused_NamingTheCertificate()
    {
        using var pki = DevPki.Create("kubernetes CA");
        using var other = DevPki.Create("some other CA");
        using var dir = new TempDir();
        await using var api = await FakeKubeApiServer.StartAsync((other.Issue("kube-apiserver", server: true), pki.Ca));
        api.Put(FakeKubeApiServer.Node(Node));
        using var client = pki.Issue("system:node:" + Node);
        string B64(string pem) => Convert.ToBase64String(Encoding.UTF8.GetBytes(pem));
        File.WriteAllText(dir["kubelet.conf"], Kubeconfig(api.Url,
            "    certificate-authority-data: " + B64(pki.Ca.ExportCertificatePem()),
            $"      client-certificate-data: {B64(client.ExportCertificatePem())}\n      client-key-data: {B64(client.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem())}"));

        var config = Kubernetes.Api.Kubeconfig.Load(dir["kubelet.conf"]);
        Assert.NotNull(config.ClientCertificate);
        Assert.True(config.ClientCertificate!.HasPrivateKey);
        using var kube = new KubeApiClient(config);
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => kube.GetAsync("/api/v1/nodes", KubeJson.Default.KubeListKubeNode, CancellationToken.None));
        Assert.Contains("SSL", ex.Message + ex.InnerException?.Message, StringComparison.OrdinalIgnoreCase);

        // The same data with the right CA is accepted.
        await using var good = await FakeKubeApiServer.StartAsync((pki.Issue("kube-apiserver", server: true), pki.Ca));
        good.Put(FakeKubeApiServer.Node(Node));
        using var kube2 = new KubeApiClient(Kubernetes.Api.Kubeconfig.Parse(File.ReadAllText(dir["kubelet.conf"]).Replace(api.Url, good.Url, StringComparison.Ordinal), dir["kubelet.conf"]));
        var nodes = await kube2.GetAsync("/api/v1/nodes", KubeJson.Default.KubeListKubeNode, CancellationToken.None);
        Assert.Equal(Node, Assert.Single(nodes.Items!).Metadata?.Name);
    }

    [Theory]
    [InlineData("exec", "uses an exec or auth-provider plugin")]
    [InlineData("no-context", "no current-context")]
    [InlineData("wrong-cluster", "no cluster named elsewhere in clusters")]
    [InlineData("not-yaml", "not YAML")]
    [InlineData("bad-base64", "certificate-authority-data is not base64")]
    [InlineData("missing-file", "pki/none.pem")]
    [InlineData("no-key", "has a client certificate but no client-key")]
    [InlineData("ftp", "is not an http(s) URL")]
    public void AnUnusableKubeconfig_NamesTheFileAndWhatIsWrong(string shape, string expected)
    {
        using var dir = new TempDir();
        using var pki = DevPki.Create();
        var (cert, _) = pki.IssueTo(dir.Path, "kubelet");
        var text = shape switch
        {
            "exec" => Kubeconfig("https://127.0.0.1:6443", string.Empty, "      exec:\n        command: /usr/bin/get-token\n        apiVersion: client.authentication.k8s.io/v1"),
            "no-context" => Kubeconfig("https://127.0.0.1:6443", string.Empty, "      token: abc").Replace("current-context: default-context", string.Empty, StringComparison.Ordinal),
            "wrong-cluster" => Kubeconfig("https://127.0.0.1:6443", string.Empty, "      token: abc").Replace("cluster: default-cluster", "cluster: elsewhere", StringComparison.Ordinal),
            "not-yaml" => "clusters: [unclosed",
            "bad-base64" => Kubeconfig("https://127.0.0.1:6443", "    certificate-authority-data: not*base64", "      token: abc"),
            "missing-file" => Kubeconfig("https://127.0.0.1:6443", "    certificate-authority: pki/none.pem", "      token: abc"),
            "no-key" => Kubeconfig("https://127.0.0.1:6443", string.Empty, "      client-certificate: " + cert),
            "ftp" => Kubeconfig("ftp://127.0.0.1:6443", string.Empty, "      token: abc"),
            _ => throw new ArgumentException(shape),
        };
        File.WriteAllText(dir["kubeconfig"], text);
        var ex = Assert.Throws<KubeconfigException>(() => Kubernetes.Api.Kubeconfig.Load(dir["kubeconfig"]));
        Assert.Contains(dir["kubeconfig"], ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AKubeconfigThatAppearsLater_IsPickedUp_AndItsProblemShownMeanwhile()
    {
        await using var api = await FakeKubeApiServer.StartAsync();
        using var dir = new TempDir();
        api.Put(FakeKubeApiServer.Node(Node));
        var view = new ClusterView(new KubernetesOptions { Kubeconfig = dir["kubeconfig"] }, Node, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        try
        {
            Assert.False(await view.WaitSettledAsync(TimeSpan.FromSeconds(5), CancellationToken.None));
            Assert.Contains(dir["kubeconfig"], view.Problem ?? string.Empty, StringComparison.Ordinal);
            api.WriteKubeconfig(dir["kubeconfig"]);
            Assert.True(await Peer.EventuallyAsync(() => view.Synced, TimeSpan.FromSeconds(15)), "never synced: " + view.Problem);
        }
        finally
        {
            await view.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task AWatchFromACompactedResourceVersion_Gets410_AndTheViewListsAgain()
    {
        await using var api = await FakeKubeApiServer.StartAsync();
        using var dir = new TempDir();
        api.Put(FakeKubeApiServer.Node(Node));
        api.Put(FakeKubeApiServer.Service("tool-a", "web", "10.96.0.10", ("http", 80, "TCP")));
        var view = new ClusterView(new KubernetesOptions { Kubeconfig = api.WriteKubeconfig(dir["kubeconfig"]), WatchTimeout = TimeSpan.FromSeconds(30) }, Node, NullLogger<ClusterView>.Instance);
        await view.StartAsync(CancellationToken.None);
        try
        {
            Assert.True(await view.WaitSettledAsync(TimeSpan.FromSeconds(15), CancellationToken.None), "not synced: " + view.Problem);
            var lists = api.ListRequests;

            // Compaction ends every watch; the change made after it is in no history a watch could replay.
            api.Compact();
            api.Put(FakeKubeApiServer.Service("tool-b", "api", "10.96.0.11", ("http", 80, "TCP")));
            api.Delete("services", "tool-a", "web");
            Assert.True(await Peer.EventuallyAsync(() => view.Model().Services.Select(s => s.Key).SequenceEqual(["tool-b/api"]), TimeSpan.FromSeconds(10)),
                "the view did not list again after the 410: " + string.Join(", ", view.Model().Services.Select(s => s.Key)));
            // Every kind's watch ended with the compaction; each comes back with an old resourceVersion, gets 410, lists.
            Assert.True(await Peer.EventuallyAsync(() => api.ListRequests >= lists + 4, TimeSpan.FromSeconds(10)), $"expected every kind listed again, saw {api.ListRequests - lists} lists");
        }
        finally
        {
            await view.StopAsync(CancellationToken.None);
        }
    }
}
