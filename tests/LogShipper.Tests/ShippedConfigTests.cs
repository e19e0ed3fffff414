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
            "Shipper" => BoundConfig.Bind<ShipperOptions>(sp),
            "Coordinator" => BoundConfig.Bind<ReportingOptions>(sp),
            _ => null,
        }, minimumLists: 3);
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        var o = Contract.WithFile(BoundConfig.Example("log-shipper.json.example"), BoundConfig.Bind<ShipperOptions>);
        Assert.Equal(["relp+tls://syslog.example:20514", "tls://syslog.example:6514"], o.Destinations.Select(d => d.Url));
    }

    [Fact]
    public void EveryListOption_IsReplaced_AndAStringForItIsNamed()
    {
        var wrong = Contract.ListsReplaced(new ShipperOptions(), ShipperOptions.Section, BoundConfig.Bind<ShipperOptions>);
        wrong.AddRange(Contract.StringForEveryList(new ShipperOptions(), ShipperOptions.Section));
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
