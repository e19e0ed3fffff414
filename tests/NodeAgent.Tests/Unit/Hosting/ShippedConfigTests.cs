using System.Collections;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Logging;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.NodeAgent.Journal;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The node-agent's configuration as it ships and as puppet writes it, bound by the daemon's own wiring: lists are
/// exactly what the file says (never appended to the defaults), and every mistake stops the daemon with one line.
/// </summary>
public sealed partial class ShippedConfigTests
{
    /// <param name="NodeAgent">Each options type the wiring registered below NodeAgent (NodeAgent itself, NodeAgent:Kubelet, ...), by section.</param>
    private sealed record Bound(IReadOnlyDictionary<string, object> NodeAgent, ReportingOptions Coordinator, LogOptions Log, IReadOnlyList<string> Problems)
    {
        public T Get<T>() => NodeAgent.Values.OfType<T>().Single();
    }

    private static Bound BindFile(string path)
    {
        var builder = AgentDaemon.CreateBuilder(DaemonInfo.NodeAgent, path, NodeAgentHost.DefaultMetricsPort);
        NodeAgentHost.Configure(builder);
        using var host = builder.Build();
        var bind = typeof(BoundConfig).GetMethod(nameof(BoundConfig.Bind))!;
        var nodeAgent = host.Services.GetServices<ValidatedOptionsEntry>().Where(e => IsNodeAgent(e.Section))
            .ToDictionary(e => e.Section, e => bind.MakeGenericMethod(e.Type).Invoke(null, [host.Services])!, StringComparer.OrdinalIgnoreCase);
        return new Bound(nodeAgent, BoundConfig.Bind<ReportingOptions>(host.Services),
            BoundConfig.Bind<LogOptions>(host.Services), BoundConfig.Problems(host.Services));
    }

    private static bool IsNodeAgent(string section) =>
        section.Equals(NodeOptions.Section, StringComparison.OrdinalIgnoreCase) || section.StartsWith(NodeOptions.Section + ":", StringComparison.OrdinalIgnoreCase);

    /// <summary>Every options type of the node-agent with its defaults, by section (what the wiring registers).</summary>
    private static IEnumerable<(string Section, object Defaults)> Defaults() =>
        BindJson(new JsonObject()).NodeAgent.Select(e => (e.Key, Activator.CreateInstance(e.Value.GetType())!));

    /// <summary>
    /// <see cref="BoundConfig.CompareLists"/> over the NodeAgent section, each part against the options type that binds
    /// it: the file's NodeAgent:Nftables against NftablesOptions, and so on (a part another type binds is left to it).
    /// </summary>
    private static (List<string> Differences, int Lists) CompareNodeAgentLists(string jsonFile, Bound bound)
    {
        var root = JsonNode.Parse(File.ReadAllText(jsonFile), documentOptions: new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true })!;
        var differences = new List<string>();
        var lists = 0;
        using var dir = new TempDir();
        foreach (var (section, options) in bound.NodeAgent)
        {
            JsonNode? part = root;
            foreach (var key in section.Split(':'))
            {
                part = (part as JsonObject)?[key];
            }

            if (part is not JsonObject obj)
            {
                continue;
            }

            var own = (JsonObject)obj.DeepClone();
            foreach (var other in bound.NodeAgent.Keys.Where(k => k.StartsWith(section + ":", StringComparison.OrdinalIgnoreCase) && k.Count(c => c == ':') == section.Count(c => c == ':') + 1))
            {
                own.Remove(other[(section.Length + 1)..]);
            }

            File.WriteAllText(dir["part.json"], new JsonObject { ["Part"] = own }.ToJsonString());
            var (d, l) = BoundConfig.CompareLists(dir["part.json"], s => s == "Part" ? options : null);
            differences.AddRange(d.Select(x => section + x["Part".Length..]));
            lists += l;
        }

        return (differences, lists);
    }

    private static Bound BindJson(JsonObject config)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["node-agent.json"], config.ToJsonString());
        return BindFile(dir["node-agent.json"]);
    }

    [Fact]
    public void TheShippedExample_BindsEveryListExactlyAsWritten()
    {
        var bound = BindFile(BoundConfig.Example("node-agent.json.example"));
        var (differences, lists) = BoundConfig.CompareLists(BoundConfig.Example("node-agent.json.example"), s => s == "Coordinator" ? bound.Coordinator : null);
        var (nodeAgentDifferences, nodeAgentLists) = CompareNodeAgentLists(BoundConfig.Example("node-agent.json.example"), bound);
        differences.AddRange(nodeAgentDifferences);
        lists += nodeAgentLists;
        Assert.True(differences.Count == 0, string.Join("\n", differences));
        Assert.True(lists >= 9, $"only {lists} lists compared");

        // What the outside reading found broken, by name.
        Assert.Equal(["-j", "list", "table", "ip", "kube-proxy"], bound.Get<NftablesOptions>().Arguments);
        Assert.Equal(["-j", "list", "table", "ip6", "kube-proxy"], bound.Get<NftablesOptions>().Ipv6Arguments);
        Assert.Equal(["kube-system"], bound.Get<TenantPolicyOptions>().ExemptNamespaces);
        Assert.Empty(bound.Get<StuckProcessesOptions>().IgnoreCommands);
        Assert.Equal(["kubelet.service", "docker.service", "containerd.service"], bound.Get<JournalOptions>().Units);

        // The example is complete but for this host's files: the certificate paths of a puppet host do not exist here.
        Assert.All(bound.Problems, p => Assert.Contains("does not exist", p, StringComparison.Ordinal));
    }

    /// <summary>
    /// node-agent.json as puppet writes it (packaging/puppet/toolforge_agents, class toolforge_agents::worker, rendered
    /// by puppet itself: <see cref="PuppetModule"/>), with the module's defaults and with a site's hiera changing a few
    /// keys: every list bound as written, every key known, no problem but the puppet certificate files absent here.
    /// </summary>
    [Theory]
    [InlineData("worker")]
    [InlineData("worker_changed")]
    public async Task TheConfigPuppetRenders_BindsEveryListAsWritten_WithNoProblemButThisHostsFiles(string renderCase)
    {
        var path = await PuppetModule.RenderedFileAsync(renderCase, "node-agent.json");
        var bound = BindFile(path);
        var (differences, lists) = BoundConfig.CompareLists(path, s => s == "Coordinator" ? bound.Coordinator : null);
        var (nodeAgentDifferences, nodeAgentLists) = CompareNodeAgentLists(path, bound);
        differences.AddRange(nodeAgentDifferences);
        lists += nodeAgentLists;
        Assert.True(differences.Count == 0, string.Join("\n", differences));
        Assert.True(lists >= 10, $"only {lists} lists compared");
        Assert.All(bound.Problems, p => Assert.Contains("does not exist", p, StringComparison.Ordinal));
        Assert.NotEmpty(bound.Problems); // the puppet certificate of tools-k8s-worker-1 is not on this host

        // Review C2: the module's data names the drain's and the ladder's keys too (every key the README documents);
        // a site's hiera that sets Remediation replaces the subsection (worker_changed).
        if (renderCase == "worker")
        {
            var remediation = JsonNode.Parse(await File.ReadAllTextAsync(path))!["NodeAgent"]!["Remediation"]!;
            Assert.NotNull(remediation["Drain"]?["StuckAfter"]);
            Assert.NotNull(remediation["Ladder"]?["Recover"]?["Checks"]);
            Assert.NotNull(remediation["Ladder"]?["Triggers"]?["RebootRequired"]?["Path"]);
            Assert.Equal(["/var/lib/puppet/state/agent_disabled.lock", "/opt/puppetlabs/puppet/cache/state/agent_disabled.lock"], bound.Get<RemediationOptions>().Ladder.Holds.LockFiles);
        }

        // What the shipped example says, as puppet writes it by default.
        Assert.Equal(["kube-system"], bound.Get<TenantPolicyOptions>().ExemptNamespaces);
        Assert.Equal(["-j", "list", "table", "ip6", "kube-proxy"], bound.Get<NftablesOptions>().Ipv6Arguments);
        Assert.Equal(["kubelet.service", "docker.service", "containerd.service"], bound.Get<JournalOptions>().Units);
        Assert.Empty(bound.Get<JournalOptions>().Rules);
        Assert.Equal("/var/lib/puppet/ssl/certs/tools-k8s-worker-1.tools.eqiad1.wikimedia.cloud.pem", bound.Coordinator.Certificate);
        Assert.Equal("/var/lib/puppet/ssl/certs/ca.pem", bound.Coordinator.CaBundle);
        if (renderCase == "worker")
        {
            Assert.Equal("https://coordinator.example:9500", bound.Coordinator.Address);
            Assert.Equal(RuntimeMode.Auto, bound.Get<NodeOptions>().Runtime);
            Assert.False(bound.Get<RemediationOptions>().Kubelet.Enabled);
            Assert.Equal("Information", bound.Log.Level);
        }
        else
        {
            // spec/fixtures/hiera/worker_changed.yaml, through hiera's merge of the module's data.
            Assert.Equal("https://tools-coordinator.tools.eqiad1.wikimedia.cloud:9500", bound.Coordinator.Address);
            Assert.Equal(["https://tools-coordinator-2.tools.eqiad1.wikimedia.cloud:9500"], bound.Coordinator.Addresses);
            Assert.Equal(RuntimeMode.Cri, bound.Get<NodeOptions>().Runtime);
            Assert.True(bound.Get<RemediationOptions>().Kubelet.Enabled);
            Assert.Equal(TimeSpan.FromMinutes(10), bound.Get<RemediationOptions>().Kubelet.FailingFor);
            Assert.Equal("Debug", bound.Log.Level);
        }
    }

    /// <summary>
    /// Every list option that has a default, found by walking the options (so a new one is covered without a new
    /// test): written empty it is empty; written with one item it is that one item.
    /// </summary>
    [Fact]
    public void EveryListWithADefault_IsReplacedByTheConfiguration_NeverAppendedTo()
    {
        var withDefaults = Defaults().SelectMany(d => OptionsLists.Find(d.Defaults, d.Section)).Where(l => l.Default.Count > 0).ToList();
        Assert.Contains(withDefaults, l => l.Path == "NodeAgent:Nftables:Arguments");
        Assert.Contains(withDefaults, l => l.Path == "NodeAgent:TenantPolicy:ExemptNamespaces");
        foreach (var list in withDefaults)
        {
            var empty = Lookup(BindJson(OptionsLists.ConfigAt(list.Path, new JsonArray())), list.Path);
            Assert.True(empty.Count == 0, $"{list.Path}: [] bound as [{string.Join(", ", empty)}]");

            var one = list.Default[^1];
            var single = Lookup(BindJson(OptionsLists.ConfigAt(list.Path, new JsonArray(JsonValue.Create(one?.ToString())))), list.Path);
            Assert.True(single.Count == 1 && Equals(single[0]?.ToString(), one?.ToString()), $"{list.Path}: [\"{one}\"] bound as [{string.Join(", ", single)}]");
        }
    }

    [Fact]
    public void EveryTimedCheck_TakesEnabledIntervalAndTimeout_FromItsSection_AndNamesABadOne()
    {
        var timed = BindJson(new JsonObject()).NodeAgent.Where(e => e.Value is TimedCheckOptions).Select(e => e.Key).ToList();
        Assert.True(timed.Count >= 7, $"only {timed.Count} timed checks: {string.Join(", ", timed)}");

        JsonObject Config(Func<string, JsonObject> each)
        {
            var nodeAgent = new JsonObject();
            foreach (var section in timed)
            {
                nodeAgent[section[(NodeOptions.Section.Length + 1)..]] = each(section);
            }

            return new JsonObject { ["NodeAgent"] = nodeAgent };
        }

        var set = BindJson(Config(s => new JsonObject { ["Enabled"] = false, ["Interval"] = "00:07:00", ["Timeout"] = "00:00:07" }));
        foreach (var section in timed)
        {
            var o = (TimedCheckOptions)set.NodeAgent[section];
            Assert.Equal((false, TimeSpan.FromMinutes(7)), (o.Enabled, o.Interval));
            if (o is TimedCallCheckOptions call)
            {
                Assert.Equal(TimeSpan.FromSeconds(7), call.Timeout);
            }
            else
            {
                Assert.Contains(set.Problems, p => p.StartsWith($"{section}:Timeout: unknown key", StringComparison.OrdinalIgnoreCase));
            }
        }

        var bad = BindJson(Config(s => new JsonObject { ["Interval"] = "00:00:00" }));
        foreach (var section in timed)
        {
            Assert.Contains(bad.Problems, p => p.StartsWith($"{section}:Interval: must be a positive duration", StringComparison.OrdinalIgnoreCase));
        }
    }

    [Fact]
    public void AStringWhereAListBelongs_IsNamed_ForEveryListOption()
    {
        foreach (var list in Defaults().SelectMany(d => OptionsLists.Find(d.Defaults, d.Section)))
        {
            var problems = BindJson(OptionsLists.ConfigAt(list.Path, "kube-system")).Problems;
            Assert.True(problems.Any(p => p.StartsWith($"{list.Path}: must be ", StringComparison.Ordinal) && p.Contains("not the single value \"kube-system\"", StringComparison.Ordinal)),
                $"{list.Path}: {string.Join(" | ", problems)}");
        }
    }

    public static TheoryData<string, string, string> Mistakes => new()
    {
        // name, configuration file, the start of the one line
        { "unknown section", """{ "NodeAgnet": { "NodeName": "x" } }""", "NodeAgnet: unknown section" },
        { "string for a list", """{ "NodeAgent": { "TenantPolicy": { "ExemptNamespaces": "kube-system" } } }""", "NodeAgent:TenantPolicy:ExemptNamespaces: must be a list, not the single value \"kube-system\"" },
        { "object for a string", """{ "NodeAgent": { "NodeName": { "a": 1 } } }""", "NodeAgent:NodeName: must be a single value, not an object" },
        { "string for a section", """{ "NodeAgent": { "Kubelet": "on" } }""", "NodeAgent:Kubelet: must be an object (a section), not the single value \"on\"" },
        { "bad duration", """{ "NodeAgent": { "Kubelet": { "Interval": "5 minutes" } } }""", "NodeAgent:Kubelet:Interval: must be a duration such as \"00:00:30\"" },
        { "JSON syntax", "{\n  \"NodeAgent\": {\n    \"NodeName\": x\n  }\n}", "JSON syntax error at line 3, column 17" },
    };

    private static void AssertOneConfigLine(ProcessResult r, string expected, string name)
    {
        var wrong = ConfigContract.OneConfigLine("toolforge-node-agent", r, expected);
        Assert.True(wrong is null, $"{name}: {wrong}");
    }

    /// <summary>The bound list at <paramref name="path"/>, from the options type whose section holds it.</summary>
    private static IList Lookup(Bound bound, string path)
    {
        var section = bound.NodeAgent.Keys.Where(s => path.StartsWith(s + ":", StringComparison.OrdinalIgnoreCase)).MaxBy(s => s.Length)!;
        return OptionsLists.ListAt(bound.NodeAgent[section], path[(section.Length + 1)..]);
    }
}
