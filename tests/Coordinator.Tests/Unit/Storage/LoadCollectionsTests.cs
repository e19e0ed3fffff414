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
    public void Held_NoCollectionRuns_ThenResumed()
    {
        GC.Collect(); // a quiet heap, as at a start: the region is granted without a full blocking collection
        GC.WaitForPendingFinalizers();
        var held = StoreStartup.HoldCollections();
        try
        {
            Assert.True(held, "the GC did not grant the load's region");
            Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
            var gen0 = GC.CollectionCount(0);
            Allocate(64L << 20); // small objects, as a load's: well inside the budget
            Assert.Equal(gen0, GC.CollectionCount(0));
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
        GC.Collect();
        var held = StoreStartup.HoldCollections();
        try
        {
            Assert.True(held);
            Allocate(StoreStartup.LoadBudget + (16L << 20)); // past the budget: the GC leaves the region and collects
            Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        }
        finally
        {
            StoreStartup.ResumeCollections(held); // no exception: the region had ended
        }

        held = StoreStartup.HoldCollections();
        try
        {
            Assert.True(held);
            GC.Collect(); // another thread's collection ends it
        }
        finally
        {
            StoreStartup.ResumeCollections(held);
        }

        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }

    /// <summary>Small objects (under the large object heap's 85,000 bytes), kept alive a short while as a load's are.</summary>
    private static void Allocate(long bytes)
    {
        var keep = new List<byte[]>(1024);
        for (long total = 0; total < bytes; total += 8192)
        {
            keep.Add(new byte[8192 - 32]);
            if (keep.Count == 1024)
            {
                keep.Clear(); // 8 MiB at a time: garbage counts against the budget as much as what stays
            }
        }

        GC.KeepAlive(keep);
    }
}

/// <summary>The region is the whole process's: no other test (an in-process coordinator's start takes one) beside these.</summary>
[CollectionDefinition(nameof(LoadCollectionsTests), DisableParallelization = true)]
public sealed class LoadCollectionsSerial;
