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
        Assert.Null(await schedule.RunDueAsync()); // not yet: counted from the start
        Assert.Equal(0, SecurityBuilds(h));

        h.Time.Advance(TimeSpan.FromMinutes(2));
        await schedule.RunDueAsync(); // due: asked for by this call or the sweeper's, once
        var first = Assert.Single(h.Services.GetRequiredService<BuildQueue>().List(1000), b => b.Request.SecurityRebuild);
        Assert.Equal(("coordinator", "weekly DSA sweep", "base-a"), (first.RequestedBy, first.Request.Reason, first.Request.Images.Single()));

        // An admin's security rebuild an hour later moves the next one: counted from the last asked for, by anyone.
        h.Time.Advance(TimeSpan.FromHours(1));
        var admin = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { SecurityRebuild = true, Reason = "DSA-5834-1" } });
        h.Time.Advance(TimeSpan.FromMinutes(90));
        Assert.Null(await schedule.RunDueAsync());
        Assert.Equal(2, SecurityBuilds(h));
        h.Time.Advance(TimeSpan.FromMinutes(31));
        await schedule.RunDueAsync();
        Assert.Equal(3, SecurityBuilds(h));
        Assert.Equal("DSA-5834-1", admin.Request.Reason);
    }

    [Fact]
    public async Task OffByDefault_AndABadSetting_StopsTheStartNamingTheKey()
    {
        await using (var h = await CoordinatorHarness.StartAsync(fakeTime: true))
        {
            h.Time!.Advance(TimeSpan.FromDays(30));
            Assert.Null(await h.Services.GetRequiredService<SecurityRebuildSchedule>().RunDueAsync());
            Assert.Equal(0, SecurityBuilds(h));
        }

        var o = new SecurityRebuildOptions { Interval = TimeSpan.FromMinutes(5), Reason = "x\u001b[2J" };
        Assert.Equal(
            ["Coordinator:SecurityRebuild:Interval: 0 (off) or from 01:00:00 to 24.20:31:23 (got 00:05:00)", "Coordinator:SecurityRebuild:Reason: build.reason: control or format characters are not taken"],
            o.Validate(SecurityRebuildOptions.Section));
    }
}
