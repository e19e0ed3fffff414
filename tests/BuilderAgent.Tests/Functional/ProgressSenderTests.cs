using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.BuilderAgent.Inventory;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// The builder daemon's progress against a real coordinator: an image's inventory travels in a call of its own after
/// the image's result, so a refused inventory loses nothing else (review of issue 27, A2).
/// </summary>
public sealed class ProgressSenderTests
{
    private static readonly string Digest = "sha256:" + new string('c', 64);

    [Fact]
    public async Task AnInventoryTheCoordinatorRefuses_LeavesTheImagesResultAndLogStored_AndIsSaidInTheLog()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        using var commands = h.AgentClient(CoordinatorHarness.Builder).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        var build = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-c" }, Push = true } });
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        {
            Assert.True(await commands.ResponseStream.MoveNext(cts.Token));
        }

        var command = commands.ResponseStream.Current;
        var (cert, key) = h.Issue(CoordinatorHarness.Builder);
        using var connection = new CoordinatorConnection(Microsoft.Extensions.Options.Options.Create(new ReportingOptions { Address = h.Address, Certificate = cert, Key = key, CaBundle = h.CaPath, CallTimeout = TimeSpan.FromSeconds(10) }));
        await using (var sender = new ProgressSender(connection, command.Id, build.Id, TimeProvider.System, NullLogger.Instance))
        {
            sender.Line("base-c", "pushed");
            // A package the coordinator refuses (a name Debian would not write): the inventory call is refused whole.
            var inventory = new Inventory.ImageInventory(new BomSubject("registry.test:5000/fx-base-c", Digest), [new DebPackage("Bad Name", "1", "amd64", "installed")], []);
            sender.Result(new ImageReport("base-c", "registry.test:5000/fx-base-c:testing", "pushed", TimeSpan.FromSeconds(3), Digest, string.Empty) { Inventory = inventory });
            sender.State(BuildState.Succeeded);
        }

        var stored = await h.AdminClient(CoordinatorHarness.Viewer).GetBuildAsync(new GetBuildRequest { Id = build.Id });
        var result = Assert.Single(stored.Images);
        Assert.Equal(("base-c", "pushed", Digest), (result.Path, result.Result, result.Digest));
        Assert.Equal(BuildState.Succeeded, stored.State);
        var log = new List<string>();
        using (var stream = h.AdminClient(CoordinatorHarness.Viewer).StreamBuildLog(new StreamBuildLogRequest { Id = build.Id }))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (await stream.ResponseStream.MoveNext(cts.Token))
            {
                log.Add(stream.ResponseStream.Current.Line);
            }
        }

        Assert.Contains("[base-c] pushed", log);
        Assert.Contains(log, l => l.StartsWith($"[base-c] inventory of {Digest} not stored by the coordinator (InvalidArgument: inventories[0].packages[0]: not a Debian package", StringComparison.Ordinal));
        // The refusal is said before the state that ended the build (the last line of its log).
        Assert.Equal(log.Count - 1, log.FindIndex(l => l.Contains("not stored by the coordinator", StringComparison.Ordinal)));
    }
}
