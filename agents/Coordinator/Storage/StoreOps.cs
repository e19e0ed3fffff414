namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>One write to the store, in the store's own terms; a batch of them is committed in one transaction.</summary>
public abstract record StoreOp;

/// <summary>
/// A node agent's report: its current state (replacing the last), what changed, events, an optional trim. With
/// <paramref name="Base"/>, what changed was decided against that stored state: when the store holds another (an
/// instance changed it first), the write is refused with <see cref="StoreConflictException"/> and nothing is stored.
/// <paramref name="SentAtMs"/> orders an agent's reports as the agent sent them: a stored row with a later one is
/// never replaced (nor is anything of the report stored), whatever the instances' clocks say.
/// </summary>
public sealed record SaveReport(
    string Node,
    long FirstSeenMs,
    int Kind,
    string Version,
    long LastReportMs,
    long HeartbeatMs,
    byte[] State,
    IReadOnlyList<CheckChange> Checks,
    IReadOnlyList<ResolvedFinding> Resolved,
    IReadOnlyList<StoredEvent> Events,
    int? KeepEvents,
    ReportBase? Base = null,
    long SentAtMs = 0) : StoreOp;

/// <summary>The agent's stored state a report was decided against: its last_report, or null for none stored.</summary>
public sealed record ReportBase(long? LastReportMs);

public sealed record CheckChange(string Name, int State, string Message);

public sealed record ResolvedFinding(string Kind, string Subject, string Message, long FirstSeenMs);

public sealed record StoredEvent(long AtMs, byte[] Body);

/// <summary>Nodes (and with them their agents) forgotten.</summary>
public sealed record ForgetNodes(IReadOnlyList<string> Nodes) : StoreOp;

/// <summary>
/// An admin's acknowledgement of one finding of (node, agent kind), replacing any earlier one. It holds while the
/// finding keeps <paramref name="FirstSeenMs"/> (a finding that resolved and came back is a new one) and its severity
/// is at most <paramref name="Severity"/>, until <paramref name="UntilMs"/>.
/// </summary>
public sealed record SaveAck(string Node, int Kind, string Finding, string Subject, long FirstSeenMs, int Severity, long AtMs, long UntilMs, string By, string Reason) : StoreOp;

/// <summary>An acknowledgement ended: by an admin, or (with <paramref name="BelowSeverity"/>) by a report whose finding
/// is now worse than it — only one acknowledged below that severity, never one an admin just gave at it.</summary>
public sealed record DeleteAck(string Node, int Kind, string Finding, string Subject, int? BelowSeverity = null) : StoreOp;

/// <summary>History (check changes, resolved findings, events, audit rows) older than a moment deleted.</summary>
public sealed record DeleteHistoryBefore(long CutoffMs) : StoreOp;

public sealed record AddAudit(long AtMs, string Identity, string Action, string Result, string Detail) : StoreOp;

/// <summary>
/// A build inserted or its body and token replaced, only forward. <paramref name="Rank"/> is generation × 8 + its
/// place in its one-way life (queued 0, handed to a builder 1, running 2, finished 3) × 2 + 1 once an admin asked it
/// to stop (so a write that does not know of the request is behind, and refused); the generation counts the times
/// it was given back because its builder left before receiving it. A stored row of a higher rank, or a finished one,
/// is never replaced: the write is refused with <see cref="StoreConflictException"/> and nothing of its batch is stored.
/// </summary>
/// <remarks>With <paramref name="ExpectedRank"/>, the row is replaced only while it still has that rank (an admin's
/// cancellation decided against it), else refused the same way.</remarks>
public sealed record SaveBuild(long Id, long RequestedAtMs, byte[] Body, string? Token, long Rank = 0, long? ExpectedRank = null) : StoreOp
{
    /// <summary>The place of a finished build: such a row is never written again.</summary>
    public const long Finished = 3;

    /// <summary>A rank's place: queued 0, handed over 1, running 2, finished 3.</summary>
    public static long Place(long rank) => rank / 2 % 4;

    /// <summary>The rank <paramref name="step"/> (place × 2 + asked-to-stop, BuildProgress.Rank) in the generation of <paramref name="rank"/>.</summary>
    public static long InGeneration(long rank, long step) => rank / 8 * 8 + step;

    /// <summary>The first rank of the generation after <paramref name="rank"/>'s: a build given back to the queue (StoreSql.ClaimRank's @giveBack in SQL).</summary>
    public static long NextGeneration(long rank) => (rank / 8 + 1) * 8;
}

public sealed record DeleteBuilds(IReadOnlyList<long> Ids) : StoreOp;

/// <summary>Lines of a build's log (a line written again with the same sequence number replaces it).</summary>
public sealed record AppendBuildLog(long Build, IReadOnlyList<(long Seq, string Line)> Lines) : StoreOp;

/// <summary>
/// The Debian packages of one pushed digest (issue 27), replacing what was stored for it: sent with a build's progress
/// by the builder the build was handed to.
/// </summary>
public sealed record SaveImageInventory(string Repository, string Digest, string Path, long RecordedAtMs, IReadOnlyList<(string Name, string Version, string Architecture)> Packages) : StoreOp;

/// <summary>The package inventories of digests a prune deleted from <paramref name="Repository"/> (issue 27): forgotten.</summary>
public sealed record ForgetImageInventories(string Repository, IReadOnlyList<string> Digests) : StoreOp;

/// <summary>
/// The sweeper lease still names <paramref name="Holder"/> with <paramref name="Epoch"/> and has not expired: else the
/// batch is refused (<see cref="StoreConflictException"/>). Retention writes carry it. SQLite: always true.
/// </summary>
public sealed record LeaseFence(string Holder, long Epoch) : StoreOp;

/// <summary>Several operations as one (committed together with the rest of the batch).</summary>
public sealed record StoreBatch(IReadOnlyList<StoreOp> Ops) : StoreOp;
