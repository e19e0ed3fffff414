namespace Toolforge.Agents.Coordinator.Storage;

/// <summary>An agent's stored state row.</summary>
/// <remarks><paramref name="SentAtMs"/> is the report's <c>sent_at</c> as the agent stamped it (clamped): rows are ordered by it.</remarks>
public sealed record StoredAgent(string Node, int Kind, string Version, long LastReportMs, long HeartbeatMs, byte[] State, long SentAtMs = 0);

/// <summary>A stored build: its protobuf body, command token (null in databases from before tokens) and rank (<see cref="SaveBuild"/>).</summary>
public sealed record StoredBuild(long Id, byte[] Body, string? Token, long Rank = 0);

/// <summary>What the coordinator holds in memory, as the store has it.</summary>
public sealed record StoredState(
    IReadOnlyList<(string Name, long FirstSeenMs)> Nodes,
    IReadOnlyList<StoredAgent> Agents,
    IReadOnlyList<(string Node, byte[] Body)> RecentEvents,
    IReadOnlyDictionary<string, int> EventCounts,
    IReadOnlyList<StoredBuild> Builds)
{
    /// <summary>The acknowledgements of the nodes read (rows of <see cref="SaveAck"/>).</summary>
    public IReadOnlyList<SaveAck> Acks { get; init; } = [];
}

/// <summary>
/// A storage engine: every SQL statement of the coordinator lives behind this (SQLite and PostgreSQL). Writes are
/// <see cref="StoreOp"/>s committed in one transaction per <see cref="Commit"/>; reads are typed. A failure of the
/// database itself (gone, refusing, timing out) is a <see cref="StoreUnavailableException"/>.
/// </summary>
public interface IStoreEngine : IDisposable
{
    StoreKind Kind { get; }

    /// <summary>Where, for messages (a path, or host/port/database; never a password).</summary>
    string Location { get; }

    /// <summary>Brings the schema up to date (safe when several instances start at once); returns the version it was at.</summary>
    int Migrate();

    int SchemaVersion { get; }

    /// <summary>Everything the coordinator holds in memory, with the last <paramref name="recentEvents"/> events per node.</summary>
    StoredState Load(int recentEvents);

    void Commit(IReadOnlyList<StoreOp> ops);

    /// <summary>What an engine that several instances share can do besides (null: this instance is the only one).</summary>
    ISharedStore? Shared { get; }

    /// <summary>Whether several coordinator instances may share this store (then memory is not the whole truth).</summary>
    bool SharedByInstances => Shared is not null;

    /// <summary>A new build id unique across instances, or null when the engine has one instance (the queue counts).</summary>
    long? NextBuildId();

    /// <summary>
    /// Claims build <paramref name="id"/> for dispatch, for exactly one caller: the stored body is locked and handed
    /// to <paramref name="claim"/>, which returns the new body (stored at once) or null when the build may not be
    /// handed out any more. False when it was not claimed (taken, gone, or locked by a claim in progress). The row's
    /// rank (<see cref="SaveBuild"/>) becomes "handed over" in its generation, or with <paramref name="giveBack"/>
    /// "queued" in the next generation (its builder left before it got the command: offered again, still forward).
    /// </summary>
    bool TryClaimBuild(long id, Func<byte[], byte[]?> claim, bool giveBack = false);

    /// <summary>One node's rows (its agents, last <paramref name="recentEvents"/> events), in one snapshot; absent from Nodes when gone.</summary>
    StoredState LoadNode(string node, int recentEvents);

    /// <summary>The build a command token belongs to, as stored.</summary>
    StoredBuild? LoadBuildByToken(string token);

    (long MaxSeq, long Bytes) BuildLogSize(long build);

    List<(long Seq, string Line)> ReadBuildLog(long build, long after, int limit);

    /// <summary>The stored rows of Debian package <paramref name="name"/> (at <paramref name="version"/> when given), newest first, at most <paramref name="limit"/>.</summary>
    List<ImagePackageRow> FindImagePackages(string name, string? version, int limit);

    /// <summary>Rows per table (migrate-store's check, and tests').</summary>
    IReadOnlyDictionary<string, long> Counts();

    /// <summary>
    /// Remediation pacing: reads pool <paramref name="pool"/> (its row, its leases) in a transaction that holds it
    /// against every other writer (other instances included), hands it to <paramref name="decide"/>, writes what that
    /// returns and commits. Nothing is written when the decision writes nothing.
    /// </summary>
    T DecideRemediationPool<T>(string pool, Func<RemediationPoolRow, (T Result, RemediationPoolWrite? Write)> decide);

    /// <summary>Every remediation pool used so far, with its stored leases.</summary>
    IReadOnlyList<RemediationPoolRow> LoadRemediationPools();

    /// <summary>Whether the store answers at all (health): null when it does, else why not.</summary>
    string? Ping();

    /// <summary>Every row of one of <see cref="StoreSchema.Tables"/>, its columns in that order.</summary>
    IEnumerable<object?[]> Export(string table);

    /// <summary>
    /// Rows for every table of <see cref="StoreSchema.Tables"/>, in one transaction: all of them or none. With
    /// <paramref name="expected"/>, the row counts are compared inside the transaction and a difference rolls it back.
    /// </summary>
    void ImportAll(Func<string, IEnumerable<object?[]>> rows, IReadOnlyDictionary<string, long>? expected = null);
}

/// <summary>The database cannot be reached or does not answer: the caller's write is not done, and may be sent again.</summary>
public sealed class StoreUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// What an engine shared by several coordinator instances (PostgreSQL) does besides storing: the sweeper lease, the
/// notifications of changes made through other instances, and reading back what they changed.
/// </summary>
public interface ISharedStore
{
    /// <summary>This process's name in notifications (so it can skip its own) and in the lease row.</summary>
    string Instance { get; }

    /// <summary>The notification channel the change listener listens on.</summary>
    string Channel { get; }

    /// <summary>Renews or takes the sweeper lease: the epoch held, or null when another instance holds it.</summary>
    /// <remarks>
    /// <c>TookOver</c>: this call took the row from another holder whose lease had expired (not one that gave it back),
    /// which may not have noticed yet.
    /// </remarks>
    (long Epoch, bool TookOver)? RenewLease(TimeSpan ttl, TimeSpan timeout);

    /// <summary>Gives the sweeper lease up if this instance holds it.</summary>
    void ReleaseLease();

    /// <summary>A connection of its own, opened (the change listener's: its LISTEN must stay on that session).</summary>
    Npgsql.NpgsqlConnection OpenDedicated();

    /// <summary>These nodes' rows, in one snapshot; absent from Nodes when gone.</summary>
    StoredState LoadNodes(IReadOnlyCollection<string> names, int recentEvents);

    /// <summary>One build as stored, or null.</summary>
    StoredBuild? LoadBuild(long id);
}
