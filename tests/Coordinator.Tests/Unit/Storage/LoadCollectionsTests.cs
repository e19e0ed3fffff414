using System.Runtime;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Tests.Unit.Storage;

/// <summary>
/// The start's load runs with no collection up to its budget, and whatever happens to the region meanwhile (allocated
/// past it, a collection asked for) ending it is never a failure of the start.
/// </summary>
[Collection(nameof(LoadCollectionsTests))]
public sealed class LoadCollectionsTests
{
    [Fact]
    public void Held_ThenResumed_LeavesTheProcessAsItWas()
    {
        var held = StoreStartup.HoldCollections();
        try
        {
            if (held)
            {
                Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
            }
        }
        finally
        {
            StoreStartup.ResumeCollections(held);
        }

        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }

    [Fact]
    public void ALoadPastTheBudget_OrACollectionAskedFor_EndsTheRegionQuietly()
    {
        var held = StoreStartup.HoldCollections();
        var kept = new List<byte[]>();
        for (long total = 0; total < StoreStartup.LoadBudget + (16 << 20); total += 1 << 20)
        {
            kept.Add(new byte[1 << 20]); // past the budget: the GC leaves the region
        }

        StoreStartup.ResumeCollections(held); // no exception
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        GC.KeepAlive(kept);
        kept.Clear();

        held = StoreStartup.HoldCollections();
        GC.Collect(); // another thread's collection ends the region
        StoreStartup.ResumeCollections(held);
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }
}

/// <summary>The region is the whole process's: no other test (an in-process coordinator's start takes one) beside these.</summary>
[CollectionDefinition(nameof(LoadCollectionsTests), DisableParallelization = true)]
public sealed class LoadCollectionsSerial;
