using System.Text.Json.Nodes;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>The builder daemon's configuration as it ships, bound by its own wiring: lists as written, mistakes named.</summary>
public sealed class ShippedConfigTests
{
    private static readonly ConfigContract Contract = new("toolforge-builder-agent", path =>
    {
        var builder = AgentDaemon.CreateBuilder(DaemonInfo.BuilderAgent, path, BuilderDaemon.DefaultMetricsPort);
        BuilderDaemon.Configure(builder);
        return builder.Build();
    });

    // The Builder section and the subsections other options types bind.
    private static SectionWithParts BuilderSection(IServiceProvider sp) => new(BoundConfig.Bind<BuilderOptions>(sp), new Dictionary<string, object>
    {
        ["Git"] = BoundConfig.Bind<Git.GitOptions>(sp),
        ["Promotion"] = BoundConfig.Bind<Promotion.PromotionOptions>(sp),
        ["Hygiene"] = BoundConfig.Bind<Hygiene.HygieneOptions>(sp),
        ["Disk"] = BoundConfig.Bind<Hygiene.DiskOptions>(sp),
    });

    [Fact]
    public void TheShippedExample_Binds_WithNoProblemButThisHostsFiles()
    {
        var wrong = Contract.ExampleProblems("builder-agent.json.example", sp => s => s switch
        {
            "Builder" => BuilderSection(sp),
            "Coordinator" => BoundConfig.Bind<ReportingOptions>(sp),
            _ => null,
        }, minimumLists: 0);
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    /// <summary>
    /// builder-agent.json as puppet writes it (packaging/puppet/toolforge_agents, class toolforge_agents::builder,
    /// rendered by puppet itself: <see cref="PuppetModule"/>): no problem but the puppet certificate files absent here.
    /// </summary>
    [Theory]
    [InlineData("builder")]
    [InlineData("builder_changed")]
    public async Task TheConfigPuppetRenders_Binds_WithNoProblemButThisHostsFiles(string renderCase)
    {
        var path = await PuppetModule.RenderedFileAsync(renderCase, "builder-agent.json");
        var wrong = Contract.FileProblems(path, $"puppet {renderCase}", sp => s => s switch
        {
            "Builder" => BuilderSection(sp),
            "Coordinator" => BoundConfig.Bind<ReportingOptions>(sp),
            _ => null,
        }, minimumLists: 1);
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        Assert.NotEmpty(Contract.WithFile(path, BoundConfig.Problems)); // the puppet certificate is not on this host

        var o = Contract.WithFile(path, BoundConfig.Bind<BuilderOptions>);
        Assert.Equal(("/srv/toollabs-images", "docker-registry.svc.toolforge.org", "toolforge"), (o.Repository, o.Registry, o.ImagePrefix));
        if (renderCase == "builder_changed")
        {
            Assert.Equal(4, o.Jobs);
            var login = Assert.Single(o.Credentials);
            Assert.Equal(("docker-registry.svc.toolforge.org", "builder", "not-a-real-password"), (login.Key, login.Value.Username, login.Value.Password));
        }
        else
        {
            Assert.Equal(2, o.Jobs);
            Assert.Empty(o.Credentials);
        }
    }

    [Fact]
    public void EveryListOption_IsReplaced_AndAStringForItIsNamed()
    {
        var wrong = Contract.ListsReplaced(new BuilderOptions(), BuilderOptions.Section, BoundConfig.Bind<BuilderOptions>);
        wrong.AddRange(Contract.ListsReplaced(new Promotion.PromotionOptions(), Promotion.PromotionOptions.Section, BoundConfig.Bind<Promotion.PromotionOptions>));
        wrong.AddRange(Contract.StringForEveryList(new ReportingOptions(), ReportingOptions.Section));
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public async Task AStringForCredentials_AnUnknownSection_AndAnUnknownVariable_StopTheDaemon()
    {
        var wrong = new List<string?>
        {
            await Contract.StopsWithOneLineAsync(new JsonObject { ["Builder"] = new JsonObject { ["Credentials"] = "x" } },
                "Builder:Credentials: must be an object of names and values, not the single value \"x\"", ["serve"]),
            await Contract.StopsWithOneLineAsync(new JsonObject { ["Buildr"] = new JsonObject() }, "Buildr: unknown section", ["serve"]),
            await Contract.StopsWithOneLineAsync(new JsonObject(), "Builder:Jbos: unknown key (from the environment variable TOOLFORGE_Builder__Jbos)", ["serve"],
                env: new Dictionary<string, string> { ["TOOLFORGE_Builder__Jbos"] = "9" }),
        };
        Assert.True(wrong.All(w => w is null), string.Join("\n", wrong.Where(w => w is not null)));
    }

    [Fact]
    public async Task Verify_AnEmptyProbe_AndAnUnknownPromotionKey_StopTheDaemon_AndVerifyAndPromote()
    {
        var wrong = new List<string?>();
        foreach (var command in new[] { "serve", "verify", "promote" })
        {
            string[] args = command == "serve" ? ["serve"] : [command, "base-a"];
            wrong.Add(await Contract.StopsWithOneLineAsync(new JsonObject { ["Builder"] = new JsonObject { ["Repository"] = Fixtures.Images, ["Promotion"] = new JsonObject { ["VerifyCommand"] = new JsonArray() } } },
                "Builder:Promotion:VerifyCommand: must be a command and its arguments", args));
            wrong.Add(await Contract.StopsWithOneLineAsync(new JsonObject { ["Builder"] = new JsonObject { ["Repository"] = Fixtures.Images, ["Promotion"] = new JsonObject { ["VerifyComand"] = "x" } } },
                "Builder:Promotion:VerifyComand: unknown key", args));
        }

        Assert.True(wrong.All(w => w is null), string.Join("\n", wrong.Where(w => w is not null)));
    }

    [Fact]
    public async Task ADockerConfigThatIsNotJson_StopsTheDaemon()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["config.json"], "auths: not json");
        var wrong = await Contract.StopsWithOneLineAsync(new JsonObject { ["Builder"] = new JsonObject { ["DockerConfig"] = dir["config.json"] } },
            $"Builder:DockerConfig: {dir["config.json"]} is not a docker config.json", ["serve"]);
        Assert.Null(wrong);
    }
}
