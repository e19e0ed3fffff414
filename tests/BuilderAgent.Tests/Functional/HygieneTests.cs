using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Hygiene;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// builder.hygiene (issue 27) against a real dockerd: the dangling images an image's rebuilds leave are removed once
/// older than DanglingAfter, with the bytes Docker reclaimed; a tagged image, and a dangling one a container still uses,
/// are kept.
/// </summary>
[Collection("docker")]
public sealed class HygieneTests(DockerFixture fx)
{
    private readonly string _name = "hygiene-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task DanglingImages_AreRemovedOnceOlderThanTheBound_WhatIsTaggedOrUsedIsKept_AndTheReclaimedBytesAreSaid()
    {
        using var context = new TempDir("hygiene-image");
        File.Copy("/bin/busybox", context["busybox"]);
        async Task<string> BuildAsync(string content)
        {
            await File.WriteAllTextAsync(context["note"], content);
            await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY busybox /bin/busybox\nCOPY note /note\n");
            await fx.Docker.DockerAsync($"build -q -t {_name}:testing {context.Path}");
            return (await fx.Docker.DockerAsync($"image inspect --format {{{{.Id}}}} {_name}:testing")).Trim();
        }

        var first = await BuildAsync("first build " + Guid.NewGuid());
        var second = await BuildAsync("second build " + Guid.NewGuid()); // first is dangling now
        await fx.Docker.DockerAsync($"create --network none --name {_name}-user {second} /bin/busybox true");
        var third = await BuildAsync("third build " + Guid.NewGuid()); // second is dangling, but a container uses it
        var state = new Common.Reporting.AgentState(TimeProvider.System, NullLogger<Common.Reporting.AgentState>.Instance);
        using var docker = new BuilderDocker(fx.Docker.Endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2));
        async Task<CheckResult> RunAsync(TimeSpan after)
        {
            var check = new HygieneCheck(docker, Microsoft.Extensions.Options.Options.Create(new HygieneOptions { DanglingAfter = after }), state, TimeProvider.System, NullLogger<HygieneCheck>.Instance);
            await check.RunGuardedAsync(CancellationToken.None);
            return state.GetCheck(HygieneCheck.Check)!;
        }

        try
        {
            // Not old enough: nothing removed.
            var young = await RunAsync(TimeSpan.FromHours(24));
            Assert.True(young.State == CheckState.Ok, young.Message);
            Assert.StartsWith("0 image record(s) deleted (dangling images older than 24 h and their layers), 0 MiB reclaimed", young.Message, StringComparison.Ordinal);
            Assert.Contains(first, await fx.Docker.DockerAsync("images -q --no-trunc --filter dangling=true"), StringComparison.Ordinal);

            var pruned = await RunAsync(TimeSpan.Zero);
            Assert.True(pruned.State == CheckState.Ok, pruned.Message);
            var images = await fx.Docker.DockerAsync("images -aq --no-trunc");
            Assert.DoesNotContain(first, images, StringComparison.Ordinal);  // dangling, old enough: gone
            Assert.Contains(second, images, StringComparison.Ordinal);       // dangling, but a container uses it
            Assert.Contains(third, images, StringComparison.Ordinal);        // tagged
            Assert.True(pruned.Values["removed"] >= 1, pruned.Message);
            Assert.True(pruned.Values["reclaimed_bytes"] > 0, pruned.Message); // the first build's own note layer at least

            // While a verify or an inventory read holds images it pulled by digest (untagged), the prune waits.
            await using (await docker.HoldImagesAsync(CancellationToken.None))
            {
                var fourth = await BuildAsync("fourth build " + Guid.NewGuid()); // third is dangling now
                var held = await RunAsync(TimeSpan.Zero);
                Assert.StartsWith("not pruned this time: a verify or an inventory read is using images", held.Message, StringComparison.Ordinal);
                Assert.Contains(third, await fx.Docker.DockerAsync("images -aq --no-trunc"), StringComparison.Ordinal);
                Assert.Empty(await docker.SweepReadContainersAsync(TimeSpan.Zero, DateTimeOffset.UtcNow.AddHours(1), CancellationToken.None));
            }
        }
        finally
        {
            await fx.Docker.DockerAsync($"rm -f {_name}-user");
        }
    }
}
