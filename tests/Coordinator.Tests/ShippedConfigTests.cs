using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Logging;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>The coordinator's configuration as it ships, bound by its own wiring: lists as written, mistakes named.</summary>
public sealed class ShippedConfigTests
{
    private static readonly ConfigContract Contract = new("toolforge-coordinator", path =>
    {
        var builder = new HostApplicationBuilder(AgentHost.Settings());
        CoordinatorApp.AddConfiguration(builder, path);
        return builder.Build();
    });

    [Fact]
    public void TheShippedExample_BindsEveryListExactlyAsWritten()
    {
        var wrong = Contract.ExampleProblems("coordinator.json.example", sp => s => s switch
        {
            "Coordinator" => BoundConfig.Bind<CoordinatorOptions>(sp),
            "Log" => BoundConfig.Bind<LogOptions>(sp),
            _ => null,
        }, minimumLists: 5);
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        var o = Contract.WithFile(BoundConfig.Example("coordinator.json.example"), BoundConfig.Bind<CoordinatorOptions>);
        Assert.Equal(["tools-imagebuilder-1.tools.eqiad1.wikimedia.cloud"], o.Builders);
        Assert.Equal(["tools-k8s-*.tools.eqiad1.wikimedia.cloud"], o.Nodes);
    }

    [Fact]
    public void EveryListOption_IsReplaced_AndAStringForItIsNamed()
    {
        var wrong = Contract.ListsReplaced(new CoordinatorOptions(), CoordinatorOptions.Section, BoundConfig.Bind<CoordinatorOptions>);
        wrong.AddRange(Contract.StringForEveryList(new CoordinatorOptions(), CoordinatorOptions.Section));
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public async Task AStringForAdmins_AnUnknownSection_AndAnUnknownVariable_StopTheDaemon()
    {
        var wrong = new List<string?>
        {
            // What a puppet lookup() easily yields: dropped silently before, so that admin was refused and could report as a node.
            await Contract.StopsWithOneLineAsync(new JsonObject { ["Coordinator"] = new JsonObject { ["Admins"] = "admin.test" } },
                "Coordinator:Admins: must be a list, not the single value \"admin.test\""),
            await Contract.StopsWithOneLineAsync(new JsonObject { ["Coordinatr"] = new JsonObject { ["Port"] = 1 } }, "Coordinatr: unknown section"),
            await Contract.StopsWithOneLineAsync(new JsonObject(), "Coordinator:Prot: unknown key (from the environment variable TOOLFORGE_Coordinator__Prot)",
                env: new Dictionary<string, string> { ["TOOLFORGE_Coordinator__Prot"] = "9600" }),
        };
        Assert.True(wrong.All(w => w is null), string.Join("\n", wrong.Where(w => w is not null)));
    }
}
