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

    /// <summary>What `nft list` prints (text) given where `nft -j list` belongs: one line that says so, not the file echoed.</summary>
    [Fact]
    public async Task AuditNftables_GivenNftText_SaysUseNftJ_InOneLine()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["svc.json"], NftReferenceData.KubectlJson("overall-rules"));
        var text = Path.Combine(NftReferenceData.Dir, "overall-rules.kernel.txt");
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["audit", "nftables", "--services", dir["svc.json"], "--nft-json", text]);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"toolforge-node-agent: --nft-json {text}: this is nft text, not JSON: use `nft -j list table ip kube-proxy` (and `nft -j list table ip6 kube-proxy`)", r.Stderr.Trim());
        Assert.Empty(r.Stdout);
    }

    /// <summary>Broken JSON is named by line and byte; the parser's message, which quotes the token it stopped at, is not echoed.</summary>
    [Theory]
    [InlineData("--nft-json")]
    [InlineData("--services")]
    public async Task AnInputThatIsNotJson_IsNamedByFlagLineAndByte_WithoutItsText(string flag)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["svc.json"], NftReferenceData.KubectlJson("overall-rules"));
        await File.WriteAllTextAsync(dir["yaml.txt"], "kind: List\nitems:\n- " + new string('x', 5000));
        var nft = Path.Combine(NftReferenceData.Dir, "overall-rules.kernel.json");
        string[] args = ["audit", "nftables", "--services", flag == "--services" ? dir["yaml.txt"] : dir["svc.json"], "--nft-json", flag == "--nft-json" ? dir["yaml.txt"] : nft];
        var r = await Run.DotnetToolAsync("toolforge-node-agent", args);
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains(dir["yaml.txt"], line, StringComparison.Ordinal);
        Assert.Contains("not ", line, StringComparison.Ordinal);
        Assert.Contains("JSON", line, StringComparison.Ordinal);
        Assert.Contains("line 1", line, StringComparison.Ordinal);
        Assert.DoesNotContain("xxxxxxxx", line, StringComparison.Ordinal);
        Assert.True(line.Length < 400, line);
    }

    /// <summary>A missing input, a directory: the flag and the file named, no .NET wording ("Could not find file", "Access to the path").</summary>
    [Theory]
    [InlineData("--services", "missing", "does not exist")]
    [InlineData("--services", "dir", "is a directory, not a file")]
    [InlineData("--iptables-save", "missing", "does not exist")]
    [InlineData("--iptables-save", "dir", "is a directory, not a file")]
    [InlineData("--endpointslices", "missing", "does not exist")]
    public async Task AuditIptables_AMissingInputOrADirectory_IsNamedWithItsFlag(string flag, string what, string says)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["svc.json"], ReferenceData.KubectlJson(ReferenceData.Rows("overall-rules")));
        await File.WriteAllTextAsync(dir["dump.txt"], Dump);
        Directory.CreateDirectory(dir["a-dir"]);
        var bad = what == "dir" ? dir["a-dir"] : dir["absent.json"];
        var args = new List<string> { "audit", "iptables", "--services", flag == "--services" ? bad : dir["svc.json"], "--iptables-save", flag == "--iptables-save" ? bad : dir["dump.txt"] };
        if (flag == "--endpointslices")
        {
            args.AddRange(["--endpointslices", bad]);
        }

        var r = await Run.DotnetToolAsync("toolforge-node-agent", args);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"toolforge-node-agent: {flag} {bad}: {says}", r.Stderr.Trim());
    }
}
