using Toolforge.Agents.AgentCtl.Commands;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.AgentCtl.Tests;

/// <summary>agentctl watch joins a snapshot sent in chunks into one: the first part's time, builds and resync reason, every node, the last part's version.</summary>
public sealed class WatchAssembleTests
{
    private static WatchEvent Part(bool continued, string version, string reason, params string[] nodes)
    {
        var s = new Snapshot { Continued = continued };
        s.Nodes.AddRange(nodes.Select(n => new NodeSummary { Name = n }));
        return new WatchEvent { Snapshot = s, Version = version, ResyncReason = reason, At = new Google.Protobuf.WellKnownTypes.Timestamp { Seconds = nodes.Length } };
    }

    [Fact]
    public void Parts_AreJoined_AndOnlyTheWholeSnapshotIsPrinted()
    {
        WatchEvent? parts = null;
        var first = Part(true, "", "too old", "a", "b");
        first.Snapshot.Builds.Add(new Build { Id = "7" });
        Assert.Null(WatchCommand.Assemble(ref parts, first));
        Assert.Null(WatchCommand.Assemble(ref parts, Part(true, "", "", "c", "d")));
        var whole = WatchCommand.Assemble(ref parts, Part(false, "i:42", "", "e"));
        Assert.NotNull(whole);
        Assert.Null(parts);
        Assert.Equal(["a", "b", "c", "d", "e"], whole.Snapshot.Nodes.Select(n => n.Name));
        Assert.Equal(("i:42", "too old", false, 2L), (whole.Version, whole.ResyncReason, whole.Snapshot.Continued, whole.At.Seconds));
        Assert.Equal("7", Assert.Single(whole.Snapshot.Builds).Id);

        // A change after it passes through; an unfinished snapshot is dropped, not glued onto the next one.
        var change = new WatchEvent { Node = new NodeSummary { Name = "a" } };
        Assert.Same(change, WatchCommand.Assemble(ref parts, change));
        Assert.Null(WatchCommand.Assemble(ref parts, Part(true, "", "", "x")));
        Assert.Same(change, WatchCommand.Assemble(ref parts, change));
        Assert.Equal(["y"], WatchCommand.Assemble(ref parts, Part(false, "i:50", "", "y"))!.Snapshot.Nodes.Select(n => n.Name));

        // An older coordinator's whole snapshot: as it came.
        var old = Part(false, "i:1", "", "z");
        Assert.Same(old, WatchCommand.Assemble(ref parts, old));
    }
}
