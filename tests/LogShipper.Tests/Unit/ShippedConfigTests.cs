using Toolforge.Agents.LogShipper.Cli;
using Toolforge.Agents.LogShipper.Delivery;
using Toolforge.Agents.LogShipper.Journal;
using System.Text.Json.Nodes;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.LogShipper.Tests;

/// <summary>The shipper's configuration as it ships, bound by its own wiring: lists as written, mistakes named.</summary>
public sealed class ShippedConfigTests
{
    private static readonly ConfigContract Contract = new("toolforge-log-shipper", path =>
    {
        var builder = AgentDaemon.CreateBuilder(DaemonInfo.LogShipper, path, LogShipperHost.DefaultMetricsPort);
        LogShipperHost.Configure(builder);
        return builder.Build();
    });

    [Fact]
    public void TheShippedExample_BindsEveryListExactlyAsWritten()
    {
        var wrong = Contract.ExampleProblems("log-shipper.json.example", sp => s => s switch
        {
            "Shipper" => new SectionWithParts([BoundConfig.Bind<ShipperOptions>(sp), BoundConfig.Bind<JournalOptions>(sp)], new Dictionary<string, object>()),
            "Coordinator" => BoundConfig.Bind<ReportingOptions>(sp),
            _ => null,
        }, minimumLists: 3);
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        var o = Contract.WithFile(BoundConfig.Example("log-shipper.json.example"), BoundConfig.Bind<ShipperOptions>);
        Assert.Equal(["relp+tls://syslog.example:20514", "tls://syslog.example:6514"], o.Destinations.Select(d => d.Url));
    }

    /// <summary>
    /// log-shipper.json as puppet writes it on a worker and on the builder (packaging/puppet/toolforge_agents, class
    /// toolforge_agents::log_shipper, rendered by puppet itself: <see cref="PuppetModule"/>): every list as written, no
    /// problem but the puppet certificate files absent here; each destination carries the host's puppet files.
    /// </summary>
    [Theory]
    [InlineData("worker")]
    [InlineData("worker_changed")]
    [InlineData("builder")]
    public async Task TheConfigPuppetRenders_BindsEveryListAsWritten_WithNoProblemButThisHostsFiles(string renderCase)
    {
        var path = await PuppetModule.RenderedFileAsync(renderCase, "log-shipper.json");
        var wrong = Contract.FileProblems(path, $"puppet {renderCase}", sp => s => s switch
        {
            "Shipper" => new SectionWithParts([BoundConfig.Bind<ShipperOptions>(sp), BoundConfig.Bind<JournalOptions>(sp)], new Dictionary<string, object>()),
            "Coordinator" => BoundConfig.Bind<ReportingOptions>(sp),
            _ => null,
        }, minimumLists: 4);
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        var problems = Contract.WithFile(path, BoundConfig.Problems);
        Assert.NotEmpty(problems); // the puppet certificate of tools-k8s-worker-1 is not on this host

        var o = Contract.WithFile(path, BoundConfig.Bind<ShipperOptions>);
        const string Cert = "/var/lib/puppet/ssl/certs/tools-k8s-worker-1.tools.eqiad1.wikimedia.cloud.pem";
        Assert.All(o.Destinations, d => Assert.Equal((Cert, "/var/lib/puppet/ssl/certs/ca.pem"), (d.Certificate, d.CaBundle)));
        if (renderCase == "worker_changed")
        {
            var d = Assert.Single(o.Destinations);
            Assert.Equal(("relp+tls://tools-syslog-1.tools.eqiad1.wikimedia.cloud:20514", "tools-syslog.tools.eqiad1.wikimedia.cloud"), (d.Url, d.ServerName));
            Assert.Equal(["kubelet.service", "containerd.service"], Contract.WithFile(path, BoundConfig.Bind<JournalOptions>).Units);
        }
        else
        {
            Assert.Equal(["relp+tls://syslog.example:20514", "tls://syslog.example:6514"], o.Destinations.Select(d => d.Url));
            Assert.Empty(Contract.WithFile(path, BoundConfig.Bind<JournalOptions>).Units);
            Assert.Equal(4096, o.RelpWindowMax);
        }
    }

    [Fact]
    public void EveryListOption_IsReplaced_AndAStringForItIsNamed()
    {
        var wrong = Contract.ListsReplaced(new ShipperOptions(), ShipperOptions.Section, BoundConfig.Bind<ShipperOptions>);
        wrong.AddRange(Contract.StringForEveryList(new ShipperOptions(), ShipperOptions.Section));
        wrong.AddRange(Contract.ListsReplaced(new JournalOptions(), JournalOptions.Section, BoundConfig.Bind<JournalOptions>));
        wrong.AddRange(Contract.StringForEveryList(new JournalOptions(), JournalOptions.Section));
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public async Task AStringForUnits_AnUnknownSection_AndAnUnknownVariable_StopTheDaemon()
    {
        var wrong = new List<string?>
        {
            await Contract.StopsWithOneLineAsync(new JsonObject { ["Shipper"] = new JsonObject { ["Units"] = "kubelet.service" } },
                "Shipper:Units: must be a list, not the single value \"kubelet.service\""),
            await Contract.StopsWithOneLineAsync(new JsonObject { ["Shiper"] = new JsonObject() , ["Shipper"] = new JsonObject { ["Units"] = new JsonArray() } }, "Shiper: unknown section"),
            await Contract.StopsWithOneLineAsync(new JsonObject(), "Shipper:RelpWindw: unknown key (from the environment variable TOOLFORGE_Shipper__RelpWindw)",
                env: new Dictionary<string, string> { ["TOOLFORGE_Shipper__RelpWindw"] = "9" }),
        };
        Assert.True(wrong.All(w => w is null), string.Join("\n", wrong.Where(w => w is not null)));
    }
}
