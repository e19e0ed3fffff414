using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Coordinator.Cluster;
using Toolforge.Agents.Coordinator.Storage;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// The store is decided once (Coordinator:Store): on SQLite nothing of several instances is registered — no change
/// listener, no lease row to renew — and the one instance holds the sweeper lease. (PostgreSQL's side: MultiInstanceTests
/// resolves SweeperLease from both instances, and every HA test needs the change listener.)
/// </summary>
public sealed class StoreDecisionTests
{
    [Fact]
    public async Task On_sqlite_the_sole_instance_holds_the_lease_and_no_change_listener_or_shared_store_is_registered()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var engine = h.Services.GetRequiredService<IStoreEngine>();
        Assert.Equal((StoreKind.Sqlite, false, null), (engine.Kind, engine.SharedByInstances, engine.Shared));
        Assert.Null(h.Services.GetService<SweeperLease>());
        Assert.Null(h.Services.GetService<ISharedStore>());
        var lease = h.Services.GetRequiredService<ISweeperLease>();
        Assert.IsType<SoleInstanceLease>(lease);
        Assert.True(await lease.HoldAsync(CancellationToken.None));
        Assert.DoesNotContain(h.Services.GetServices<IHostedService>(), s => s is ChangeListener);
    }

    [Theory]
    [InlineData("sqlite", StoreKind.Sqlite)]
    [InlineData("postgresql", StoreKind.PostgreSql)]
    public void The_configured_name_is_the_engine_and_nothing_else_is(string name, StoreKind kind)
    {
        Assert.Equal(kind, StoreKinds.Parse(name));
        Assert.Equal(name, kind.Name());
        Assert.Null(StoreKinds.Parse(name.ToUpperInvariant()));
        Assert.Equal(kind, new Storage.StorageOptions { Store = name }.Engine);
    }
}
