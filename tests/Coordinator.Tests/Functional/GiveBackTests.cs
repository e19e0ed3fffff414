using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// A build claimed for a builder whose command stream ended before it read the command is not left handed to it for
/// ever: it is given back (still moving forward: the next generation of its rank) and offered to another builder.
/// </summary>
public sealed class GiveBackTests
{
    [Fact]
    public async Task A_build_claimed_for_a_builder_that_left_before_reading_it_is_offered_to_another_builder()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var queue = h.Services.GetRequiredService<BuildQueue>();

        // builder1's stream: registered, but it never reads (it is leaving).
        var leaving = await queue.ConnectAsync(CoordinatorHarness.Builder);
        var build = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } } });
        Assert.Equal(CoordinatorHarness.Builder, (await h.AdminClient(CoordinatorHarness.Viewer).GetBuildAsync(new GetBuildRequest { Id = build.Id })).Builder);

        // builder2 connects (a real stream): nothing for it yet, the build is builder1's.
        using var stream = h.AgentClient(CoordinatorHarness.Builder2).ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder2, Agent = AgentKind.Builder });
        var next = stream.ResponseStream.MoveNext(CancellationToken.None);
        Assert.False(next.IsCompleted); // whether its stream is registered yet or not, it gets the build once given back

        await queue.DisconnectAsync(leaving);
        Assert.True(await next.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(build.Id, stream.ResponseStream.Current.BuildId);
        var now = await h.AdminClient(CoordinatorHarness.Viewer).GetBuildAsync(new GetBuildRequest { Id = build.Id });
        Assert.Equal(CoordinatorHarness.Builder2, now.Builder);
        Assert.Equal(BuildState.Queued, now.State);

        await using var c = new SqliteConnection($"Data Source={h.DatabasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT rank, body FROM builds WHERE id = {build.Id}";
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(1 * 8 + 1 * 2, r.GetInt64(0)); // generation 1, handed over (generation × 8 + place × 2 + asked to stop)
        Assert.Equal(CoordinatorHarness.Builder2, Build.Parser.ParseFrom((byte[])r.GetValue(1)).Builder);
    }
}
