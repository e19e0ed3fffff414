using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Issue 27: the coordinator asks for a security rebuild every Coordinator:SecurityRebuild:Interval, counted from the
/// last one anyone asked for (or its start), as identity "coordinator", with the configured reason; off by default.
/// </summary>
public sealed class SecurityRebuildScheduleTests
{
    private static int SecurityBuilds(CoordinatorHarness h) =>
        h.Services.GetRequiredService<BuildQueue>().List(1000).Count(b => b.Request.SecurityRebuild);

    [Fact]
    public async Task ScheduledSecurityRebuild_IsAskedForOncePerInterval_CountedFromTheLastOne_ByTheCoordinator()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true, editConfig: c =>
            c["Coordinator"]!.AsObject()["SecurityRebuild"] = new JsonObject { ["Interval"] = "02:00:00", ["Reason"] = "weekly DSA sweep", ["Images"] = new JsonArray("base-a") });
        var schedule = h.Services.GetRequiredService<SecurityRebuildSchedule>();

        h.Time!.Advance(TimeSpan.FromMinutes(119));
        Assert.Null(await schedule.RunDueAsync()); // not yet: counted from the start (no throttle: this is the judgement)
        Assert.Equal(0, SecurityBuilds(h));

        h.Time.Advance(TimeSpan.FromMinutes(2));
        await schedule.RunDueAsync(); // due: asked for by this call or the sweeper's, once
        var first = Assert.Single(h.Services.GetRequiredService<BuildQueue>().List(1000), b => b.Request.SecurityRebuild);
        Assert.Equal((SecurityRebuildSchedule.Identity, "weekly DSA sweep", "base-a"), (first.RequestedBy, first.Request.Reason, first.Request.Images.Single()));
        Assert.Null(await schedule.RunDueAsync()); // asked for just now: not again

        // An admin's security rebuild of other images does not move it; one of the same images does.
        h.Time.Advance(TimeSpan.FromHours(1));
        var admin = h.AdminClient(CoordinatorHarness.Admin);
        await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { SecurityRebuild = true, Reason = "DSA-5834-1", Images = { "base-b" } } });
        await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { SecurityRebuild = true, Reason = "DSA-5835-1", Images = { "base-a" } } });
        h.Time.Advance(TimeSpan.FromMinutes(90));
        Assert.Null(await schedule.RunDueAsync()); // 2 h 30 min after the first, but 1 h 30 min after the admin's of base-a
        Assert.Equal(3, SecurityBuilds(h));
        h.Time.Advance(TimeSpan.FromMinutes(31));
        await schedule.RunDueAsync();
        Assert.Equal(4, SecurityBuilds(h));

        // A restart does not reset the clock: counted from the stored last one, not from the new start.
        h.Time.Advance(TimeSpan.FromMinutes(119));
        await h.RestartAsync();
        h.Time.Advance(TimeSpan.FromMinutes(2));
        await h.Services.GetRequiredService<SecurityRebuildSchedule>().RunDueAsync();
        Assert.Equal(5, SecurityBuilds(h));

        // The reason is required and no certificate can speak as the schedule (identities are lower-cased).
        var noReason = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { SecurityRebuild = true } }).ResponseAsync);
        Assert.StartsWith("build.reason: say why", noReason.Status.Detail, StringComparison.Ordinal);
        Assert.NotEqual(SecurityRebuildSchedule.Identity, SecurityRebuildSchedule.Identity.ToLowerInvariant());
    }

    [Fact]
    public async Task OffByDefault_AndABadSetting_StopsTheStartNamingTheKey()
    {
        await using (var h = await CoordinatorHarness.StartAsync(fakeTime: true))
        {
            h.Time!.Advance(TimeSpan.FromHours(3)); // past any interval the schedule takes (a longer jump makes every timer of the host tick for hours)
            Assert.Null(await h.Services.GetRequiredService<SecurityRebuildSchedule>().RunDueAsync());
            Assert.Equal(0, SecurityBuilds(h));
        }

        var o = new SecurityRebuildOptions { Interval = TimeSpan.FromMinutes(5), Reason = "x\u001b[2J" };
        Assert.Equal(
            ["Coordinator:SecurityRebuild:Interval: 0 (off) or from 01:00:00 to 24.20:31:23 (got 00:05:00)", "Coordinator:SecurityRebuild:Reason: build.reason: control or format characters are not taken"],
            o.Validate(SecurityRebuildOptions.Section));
    }
}
