using Toolforge.Agents.Coordinator.Hosting;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Logging;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;
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
            "Coordinator" => Coordinator(sp),
            "Log" => BoundConfig.Bind<LogOptions>(sp),
            _ => null,
        }, minimumLists: 5);
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        var o = Contract.WithFile(BoundConfig.Example("coordinator.json.example"), BoundConfig.Bind<SecurityOptions>);
        Assert.Equal(["tools-imagebuilder-1.tools.eqiad1.wikimedia.cloud"], o.Builders);
        Assert.Equal(["tools-k8s-*.tools.eqiad1.wikimedia.cloud"], o.Nodes);
    }

    /// <summary>
    /// coordinator.json as puppet writes it, one instance on SQLite and several on PostgreSQL behind haproxy
    /// (packaging/puppet/toolforge_agents, class toolforge_agents::control, rendered by puppet itself:
    /// <see cref="PuppetModule"/>): every list as written, no problem but files absent on this host (the puppet
    /// certificate, and the password credential systemd would copy to /run/credentials at start).
    /// </summary>
    [Theory]
    [InlineData("control")]
    [InlineData("control_postgresql")]
    public async Task TheConfigPuppetRenders_BindsEveryListAsWritten_WithNoProblemButThisHostsFiles(string renderCase)
    {
        var path = await PuppetModule.RenderedFileAsync(renderCase, "coordinator.json");
        var wrong = Contract.FileProblems(path, $"puppet {renderCase}", sp => s => s switch
        {
            "Coordinator" => Coordinator(sp),
            "Log" => BoundConfig.Bind<LogOptions>(sp),
            _ => null,
        }, minimumLists: 5);
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        Assert.NotEmpty(Contract.WithFile(path, BoundConfig.Problems)); // the puppet certificate is not on this host

        var o = Contract.WithFile(path, BoundConfig.Bind<SecurityOptions>);
        var listen = Contract.WithFile(path, BoundConfig.Bind<CoordinatorOptions>);
        var storage = Contract.WithFile(path, BoundConfig.Bind<StorageOptions>);
        Assert.Equal(["tools-imagebuilder-1.tools.eqiad1.wikimedia.cloud"], o.Builders);
        Assert.Equal(["tools-k8s-*.tools.eqiad1.wikimedia.cloud"], o.Nodes);
        Assert.Equal("/var/lib/puppet/ssl/certs/tools-k8s-worker-1.tools.eqiad1.wikimedia.cloud.pem", o.Certificate);
        if (renderCase == "control_postgresql")
        {
            Assert.Equal(("postgresql", 9520, 9510), (storage.Store, listen.Port, listen.HealthAgentPort));
            Assert.Equal("/run/credentials/toolforge-coordinator.service/postgresql-password", storage.PostgreSql.PasswordFile);
            Assert.DoesNotContain("Password=", storage.PostgreSql.ConnectionString, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("not-a-real-password", await File.ReadAllTextAsync(path), StringComparison.Ordinal);
            Assert.Equal(["admin-a.tools.eqiad1.wikimedia.cloud", "admin-b.tools.eqiad1.wikimedia.cloud"], o.Admins);
        }
        else
        {
            Assert.Equal(("sqlite", 9500, 0), (storage.Store, listen.Port, listen.HealthAgentPort));
            Assert.Equal("/var/lib/toolforge-coordinator/coordinator.db", storage.Database);
            Assert.Empty(o.Admins);
        }
    }

    [Fact]
    public void EveryListOption_IsReplaced_AndAStringForItIsNamed()
    {
        var wrong = Contract.ListsReplaced(new SecurityOptions(), SecurityOptions.Section, BoundConfig.Bind<SecurityOptions>);
        wrong.AddRange(Contract.StringForEveryList(new SecurityOptions(), SecurityOptions.Section));
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    /// <summary>The one flat "Coordinator" section as the features bind it: each its own keys, Remediation below.</summary>
    private static SectionWithParts Coordinator(IServiceProvider sp) => new(
        [BoundConfig.Bind<CoordinatorOptions>(sp), BoundConfig.Bind<SecurityOptions>(sp), BoundConfig.Bind<StorageOptions>(sp), BoundConfig.Bind<StateOptions>(sp),
            BoundConfig.Bind<Reports.IngestOptions>(sp)],
        new Dictionary<string, object>
        {
            ["Remediation"] = BoundConfig.Bind<Remediation.RemediationOptions>(sp),
            ["SecurityRebuild"] = BoundConfig.Bind<Builds.SecurityRebuildOptions>(sp),
        });

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
