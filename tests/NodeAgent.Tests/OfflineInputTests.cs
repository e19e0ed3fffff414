using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>Wrong input to the offline audit is an error naming what is wrong, not a result.</summary>
public sealed class OfflineInputTests
{
    private static readonly string Dump = string.Join('\n', "*nat", ":KUBE-SERVICES - [0:0]",
        "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment \"default/kubernetes:https cluster IP\" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y",
        ":KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]", "COMMIT", string.Empty);

    [Theory]
    [InlineData("""{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"tool-a"}}]}""", "no Service in it (it lists 1 Pod)")]
    [InlineData("""{"items": 5}""", "\"items\" is a JSON number")]
    [InlineData("""{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"default"},"spec":{"clusterIP":"10.96.0.1"}}]}""", "items[0]: a Service without metadata.name")]
    [InlineData("[1, 2]", "not a Kubernetes object or list")]
    [InlineData("not json", "not JSON")]
    public async Task AuditIptables_WithSomethingThatIsNotServices_ExitsTwoNamingTheProblem(string services, string says)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["svc.json"], services);
        await File.WriteAllTextAsync(dir["dump.txt"], Dump);
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "iptables", "--services", dir["svc.json"], "--iptables-save", dir["dump.txt"]]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(says, r.Stderr, StringComparison.Ordinal);
        Assert.Contains("svc.json", r.Stderr, StringComparison.Ordinal);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.DoesNotContain("stale-rule", r.Stdout, StringComparison.Ordinal);
    }
}
