using System.Security.Cryptography;
using System.Threading.Channels;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Builds;

/// <summary>
/// Build requests from admins and their hand-over to builders. Each build gets a random 128-bit command token; it is
/// handed to exactly one builder identity, and only that identity, holding that token, may report progress on it.
/// Progress for a command that does not exist, is not handed over yet, belongs to another builder or has already
/// finished changes nothing and is refused.
/// </summary>
public sealed partial class BuildQueue
{
    public const int MaxImageResults = 1000;

    private readonly object _lock = new();
    private readonly SortedDictionary<long, Build> _builds = [];
    private readonly Dictionary<string, long> _byToken = new(StringComparer.Ordinal);
    private readonly Dictionary<long, string> _tokens = [];
    private readonly Dictionary<long, long> _ranks = []; // the stored rank (SaveBuild) of what _builds holds
    private readonly Dictionary<string, List<BuilderConnection>> _connections = new(StringComparer.Ordinal);
    private readonly HashSet<long> _dispatching = [];
    private readonly StripedAsyncLock _perBuild = new(64);
    private readonly StoreWriter _writer;
    private readonly IStoreEngine _store;
    private readonly BuildLogs _logs;
    private readonly ChangeFeed _feed;
    private readonly TimeProvider _time;
    private readonly ILogger<BuildQueue> _logger;
    private readonly StateStore _state;
    private long _lastId;

    public BuildQueue(StoreWriter writer, IStoreEngine store, BuildLogs logs, ChangeFeed feed, TimeProvider time, ILogger<BuildQueue> logger, StateStore state)
    {
        _state = state;
        _writer = writer;
        _store = store;
        _logs = logs;
        _feed = feed;
        _time = time;
        _logger = logger;
    }

    /// <summary>One open command stream of a builder.</summary>
    public sealed class BuilderConnection(string identity)
    {
        public string Identity { get; } = identity;
        internal Channel<Command> Channel { get; } = System.Threading.Channels.Channel.CreateUnbounded<Command>();
        public ChannelReader<Command> Reader => Channel.Reader;
    }

    /// <summary>Why an admin's cancellation was refused, as the gRPC status it becomes.</summary>
    public sealed class CancelRefusal(StatusCode status, string message) : Exception(message)
    {
        public StatusCode Status { get; } = status;
    }

    /// <summary>
    /// An admin cancels build <paramref name="id"/>. A build no builder has taken ends CANCELLED at once. One handed to a
    /// builder is marked as asked to stop, and the builder is told on its command stream (by the instance it is
    /// connected to; again when it reconnects); it ends CANCELLED when the builder says it stopped (or SUCCEEDED/FAILED
    /// if it finished first). Each write names the rank it was decided against, stored together with
    /// <paramref name="audit"/>: a build another instance moved on meanwhile is decided again.
    /// </summary>
    public async Task<Build> CancelAsync(string id, string by, string reason, Func<Build, AddAudit> audit)
    {
        if (!long.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n))
        {
            throw new CancelRefusal(StatusCode.NotFound, $"no build \"{ReportLimits.Cut(id, 64)}\"");
        }

        string token;
        lock (_lock)
        {
            if (!_tokens.TryGetValue(n, out token!))
            {
                throw new CancelRefusal(StatusCode.NotFound, $"no build \"{n}\"");
            }
        }

        using var serial = await _perBuild.EnterAsync(token).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            Build next;
            long held;
            long rank;
            lock (_lock)
            {
                if (!_builds.TryGetValue(n, out var b))
                {
                    throw new CancelRefusal(StatusCode.NotFound, $"no build \"{n}\"");
                }

                if (Finished(b))
                {
                    throw new CancelRefusal(StatusCode.FailedPrecondition, $"build {n} has already {BuildProgress.Ended(b.State)}");
                }

                held = _ranks.GetValueOrDefault(n);
                next = b.Clone();
                var suffix = reason.Length > 0 ? $": {reason}" : string.Empty;
                if (b.DispatchedAt is null)
                {
                    // No builder has it (also one asked before and given back since): it ends here at once.
                    next.CancelRequestedBy = b.CancelRequestedBy.Length > 0 ? b.CancelRequestedBy : by;
                    next.CancelRequestedAt ??= Now();
                    next.CancelReason = b.CancelRequestedBy.Length > 0 ? b.CancelReason : reason;
                    next.State = BuildState.Cancelled;
                    next.FinishedAt = Now();
                    next.Error = $"cancelled by {by} before a builder took it{suffix}";
                }
                else if (b.CancelRequestedBy.Length > 0)
                {
                    var asked = b.CancelRequestedAt?.ToDateTimeOffset() ?? DateTimeOffset.MinValue;
                    if (_time.GetUtcNow() - asked < ForceCancelAfter)
                    {
                        // Its builder may be stopping it right now: told again, and the admin told when a cancel ends it here.
                        _connections.GetValueOrDefault(b.Builder)?.LastOrDefault()?.Channel.Writer.TryWrite(CancelCommand(b, token));
                        throw new CancelRefusal(StatusCode.FailedPrecondition,
                            $"build {n} was asked to stop by {b.CancelRequestedBy} at {asked:HH:mm:ss}Z and its builder {b.Builder} has not confirmed yet "
                            + $"(asked again now); a cancel from {asked + ForceCancelAfter:HH:mm:ss}Z on ends it here without the builder");
                    }

                    // Asked long enough ago and its builder never confirmed (gone for good, or hung): ended here. Should
                    // the builder come back and report, it is told the build has been cancelled.
                    next.State = BuildState.Cancelled;
                    next.FinishedAt = Now();
                    next.Error = $"cancelled by {by} without its builder {b.Builder} confirming (asked first by {b.CancelRequestedBy}){suffix}";
                }
                else
                {
                    // Handed over or running: its builder is asked to stop (the rank's asked-to-stop mark puts every
                    // write that does not know of it behind).
                    next.CancelRequestedBy = by;
                    next.CancelRequestedAt = Now();
                    next.CancelReason = reason;
                }

                rank = SaveBuild.InGeneration(held, BuildProgress.Rank(next));
            }

            var entry = audit(next);
            try
            {
                await _writer.WriteAsync(new StoreBatch([SaveOf(next, token, rank) with { ExpectedRank = held }, entry])).ConfigureAwait(false);
            }
            catch (StoreConflictException ex) when (attempt < 3)
            {
                Log.DecidedAgain(_logger, token[..8], ex.Message); // taken or moved on through another instance: decide again
                await TakeStoredAsync(n, token).ConfigureAwait(false);
                continue;
            }
            catch (StoreConflictException)
            {
                throw new CancelRefusal(StatusCode.Aborted, $"build {n} kept changing on another coordinator instance; nothing was stored, try again");
            }

            BuilderConnection? builder = null;
            lock (_lock)
            {
                SetIfForward(n, next, rank);
                if (!Finished(next))
                {
                    builder = _connections.GetValueOrDefault(next.Builder)?.LastOrDefault();
                }
            }

            if (Finished(next))
            {
                _logs.Finish(n);
            }

            Publish(next.Clone());
            if (builder is not null)
            {
                builder.Channel.Writer.TryWrite(CancelCommand(next, token)); // false: its stream just ended; sent when it reconnects
            }

            Log.CancelRequested(_logger, next.Id, by, next.State.Name(), next.Builder);
            return next.Clone();
        }
    }

    /// <summary>How long after a stop request a second cancel ends a handed-over build without its builder.</summary>
    public static readonly TimeSpan ForceCancelAfter = TimeSpan.FromMinutes(2);

    private static Command CancelCommand(Build b, string token) => new()
    {
        Id = token,
        BuildId = b.Id,
        IssuedAt = b.CancelRequestedAt,
        RequestedBy = b.CancelRequestedBy,
        Cancel = new CancelBuild { RequestedBy = b.CancelRequestedBy, Reason = b.CancelReason },
    };

    /// <summary>Why progress was refused: the status the builder gets, and the reason.</summary>
    public sealed record Refusal(StatusCode Status, string Message);

    /// <summary>Loads the stored builds (at start); builds from before command tokens get one now.</summary>
    public void Load(StoredState stored)
    {
        var missingTokens = new List<SaveBuild>();
        lock (_lock)
        {
            foreach (var row in stored.Builds)
            {
                var build = Build.Parser.ParseFrom(row.Body);
                _builds[row.Id] = build;
                _lastId = Math.Max(_lastId, row.Id);
                var token = row.Token;
                _ranks[row.Id] = row.Rank;
                if (token is null || row.Rank % 8 < BuildProgress.Rank(build))
                {
                    // From before command tokens or before ranks (stored as 0): given now, so every row has its owner
                    // check and moves only forward from here.
                    token ??= NewToken();
                    _ranks[row.Id] = SaveBuild.InGeneration(row.Rank, BuildProgress.Rank(build));
                    missingTokens.Add(new SaveBuild(row.Id, build.RequestedAt.ToDateTimeOffset().ToUnixTimeMilliseconds(), row.Body, token, _ranks[row.Id]));
                }

                _tokens[row.Id] = token;
                _byToken[token] = row.Id;
            }
        }

        foreach (var (id, _) in _builds.Where(b => !Finished(b.Value)))
        {
            _logs.Track(id, stored: true);
        }

        if (missingTokens.Count > 0)
        {
            // Builds from before command tokens: give each one now, so none is left without an owner check.
            _writer.WriteAsync(new StoreBatch(missingTokens)).GetAwaiter().GetResult();
        }
    }

    /// <summary>
    /// Stores a new build as queued, then hands it to a builder connected to this instance if there is one (with
    /// several instances, an instance with the builder picks it up from the notification). Fails with the store's
    /// error (UNAVAILABLE) and leaves nothing behind when the build cannot be stored.
    /// </summary>
    public async Task<Build> RequestAsync(string requestedBy, RequestBuildRequest request)
    {
        var allocated = await Task.Run(_store.NextBuildId).ConfigureAwait(false);
        Build build;
        string token;
        long id;
        lock (_lock)
        {
            id = allocated ?? _lastId + 1;
            _lastId = Math.Max(_lastId, id);
            var spec = request.Build.Clone();
            if (spec.Tag.Length == 0)
            {
                spec.Tag = "testing";
            }

            build = new Build
            {
                Id = id.ToString(System.Globalization.CultureInfo.InvariantCulture),
                RequestedBy = requestedBy,
                RequestedAt = Now(),
                State = BuildState.Queued,
                Request = spec,
                RequestedBuilder = request.Builder,
            };
            token = NewToken();
        }

        await _writer.WriteAsync(SaveOf(build, token, 0)).ConfigureAwait(false); // fails with nothing left behind (an id skipped at most)
        _logs.Track(id);
        BuilderConnection? target;
        lock (_lock)
        {
            _builds[id] = build;
            _ranks[id] = 0;
            _tokens[id] = token;
            _byToken[token] = id;
            target = LocalBuilderFor(build);
            build = build.Clone();
        }

        Publish(build);
        if (target is not null)
        {
            await TryDispatchAsync(id, target).ConfigureAwait(false);
        }

        Log.Requested(_logger, build.Id, requestedBy, string.Join(" ", build.Request.Images), target?.Identity ?? "(first builder to connect)");
        return Get(build.Id) ?? build;
    }

    // A builder with an open stream here that may take the build: the one asked for, else the first by name.
    private BuilderConnection? LocalBuilderFor(Build b) => b.RequestedBuilder.Length > 0
        ? _connections.GetValueOrDefault(b.RequestedBuilder)?.LastOrDefault()
        : _connections.Values.SelectMany(c => c).OrderBy(c => c.Identity, StringComparer.Ordinal).FirstOrDefault();

    /// <summary>
    /// Hands a queued build to <paramref name="to"/>, exactly once across instances: the stored row is locked (PostgreSQL:
    /// SELECT … FOR UPDATE SKIP LOCKED; SQLite: the file's write lock) and claimed only if it is still queued and handed
    /// to no one. False when another instance or stream got it first.
    /// </summary>
    private async Task<bool> TryDispatchAsync(long id, BuilderConnection to)
    {
        Build candidate;
        string token;
        lock (_lock)
        {
            if (!_builds.TryGetValue(id, out var b) || b.State != BuildState.Queued || b.DispatchedAt is not null || !_dispatching.Add(id))
            {
                return false;
            }

            candidate = b.Clone();
            candidate.Builder = to.Identity;
            candidate.DispatchedAt = Now();
            token = _tokens[id];
        }

        try
        {
            var body = candidate.ToByteArray();
            var claimed = await Task.Run(() => _store.TryClaimBuild(id, stored =>
            {
                var current = Build.Parser.ParseFrom(stored);
                return current.State == BuildState.Queued && current.DispatchedAt is null ? body : null;
            })).ConfigureAwait(false);
            if (!claimed)
            {
                return false;
            }

            var protection = ProtectionFor(candidate); // outside the lock: it walks every node's images
            bool sent;
            lock (_lock)
            {
                SetIfForward(id, candidate, SaveBuild.InGeneration(_ranks.GetValueOrDefault(id), BuildProgress.Rank(candidate)));
                sent = to.Channel.Writer.TryWrite(ToCommand(candidate, token, protection)); // false: its stream ended just now
                if (sent && _builds[id] is { CancelRequestedBy.Length: > 0 } asked)
                {
                    to.Channel.Writer.TryWrite(CancelCommand(asked, token)); // asked to stop while it was being handed over: after it, not before
                }
            }

            Publish(candidate.Clone());
            if (!sent)
            {
                await GiveBackAsync(id, to.Identity).ConfigureAwait(false);
                return false;
            }

            return true;
        }
        catch (Exception ex) when (ex is StoreUnavailableException or System.Data.Common.DbException)
        {
            Log.DispatchFailed(_logger, id, ex.Message);
            return false;
        }
        finally
        {
            lock (_lock)
            {
                _dispatching.Remove(id);
            }
        }
    }

    /// <summary>
    /// Another instance changed build <paramref name="id"/> (its notification, or a resync): this instance takes the
    /// stored build in, tells its watchers, ends its log followers when it finished, and offers a still queued build
    /// to a builder connected here.
    /// </summary>
    public async Task RefreshAsync(long id, StoredBuild? row)
    {
        Build? changed = null;
        BuilderConnection? target = null;
        var finished = false;
        lock (_lock)
        {
            if (row is null)
            {
                if (_builds.Remove(id) && _tokens.Remove(id, out var gone))
                {
                    _byToken.Remove(gone);
                }

                _ranks.Remove(id);

                _logs.Forget([id]);
                return;
            }

            var b = Build.Parser.ParseFrom(row.Body);
            _builds.TryGetValue(id, out var old);
            var heldRank = _ranks.GetValueOrDefault(id, -1);
            if (old is not null && (old.Equals(b) || heldRank > row.Rank))
            {
                return; // nothing new, or a read from before what this instance already took in: never back
            }

            _builds[id] = b;
            _ranks[id] = row.Rank;
            _lastId = Math.Max(_lastId, id);
            if (row.Token is { } token)
            {
                _tokens[id] = token;
                _byToken[token] = id;
            }

            if (old is null && !Finished(b) && !_logs.IsTracked(id))
            {
                _logs.Track(id, stored: true);
            }

            finished = Finished(b) && (old is null || !Finished(old));
            if (b.State == BuildState.Queued && b.DispatchedAt is null)
            {
                target = LocalBuilderFor(b);
            }
            else if (!Finished(b) && b.CancelRequestedBy.Length > 0 && (old is null || old.CancelRequestedBy.Length == 0)
                && _connections.GetValueOrDefault(b.Builder)?.LastOrDefault() is { } holder)
            {
                holder.Channel.Writer.TryWrite(CancelCommand(b, _tokens[id])); // asked through another instance; its builder is connected here
            }

            changed = b.Clone();
        }

        if (finished)
        {
            _logs.Finish(id);
        }

        Publish(changed);
        if (target is not null)
        {
            await TryDispatchAsync(id, target).ConfigureAwait(false);
        }
    }

    /// <summary>When the newest build whose request matches was asked for, or null.</summary>
    public DateTimeOffset? LastRequestedAt(Func<BuildRequest, bool> match)
    {
        lock (_lock)
        {
            return _builds.Values.Where(b => b.Request is { } r && match(r)).Select(b => (DateTimeOffset?)b.RequestedAt.ToDateTimeOffset()).Max();
        }
    }

    /// <summary>The ids of the builds held now.</summary>
    public IReadOnlyCollection<long> Ids()
    {
        lock (_lock)
        {
            return [.. _builds.Keys];
        }
    }

    public IReadOnlyList<Build> List(int limit)
    {
        lock (_lock)
        {
            return _builds.Values.Reverse().Take(limit).Select(b => b.Clone()).ToList();
        }
    }

    public Build? Get(string id)
    {
        lock (_lock)
        {
            return long.TryParse(id, out var n) && _builds.TryGetValue(n, out var b) ? b.Clone() : null;
        }
    }

    /// <summary>
    /// A builder opened its command stream: it gets every queued build meant for it or for any builder that no one
    /// has taken, and again those already handed to it that it does not list as still queued or running. A build it
    /// was running and does not list any more (the builder restarted) has failed; one it lists keeps running, also
    /// when the stream came back to another instance.
    /// </summary>
    public async Task<BuilderConnection> ConnectAsync(string identity, IReadOnlyCollection<string>? running = null)
    {
        var connection = new BuilderConnection(identity);
        var stillRunning = new HashSet<string>(running ?? [], StringComparer.Ordinal);
        var changed = new List<(Build Build, string Token)>();
        var offer = new List<long>();
        bool prunes;
        lock (_lock)
        {
            prunes = _builds.Values.Any(b => b.Request?.Prune is not null && b.State == BuildState.Queued && b.Builder == identity);
        }

        var protection = prunes ? _state.ImageProtection() : null; // outside the lock: it walks every node's images
        lock (_lock)
        {
            if (!_connections.TryGetValue(identity, out var list))
            {
                _connections[identity] = list = [];
            }

            list.Add(connection);
            foreach (var (id, b) in _builds)
            {
                var token = _tokens[id];
                if (b.State == BuildState.Queued && b.DispatchedAt is null && (b.RequestedBuilder.Length == 0 || b.RequestedBuilder == identity))
                {
                    offer.Add(id);
                }
                else if (b.State == BuildState.Queued && b.Builder == identity && !stillRunning.Contains(token))
                {
                    connection.Channel.Writer.TryWrite(ToCommand(b, token, b.Request?.Prune is null ? null : protection ?? _state.ImageProtection())); // handed over before, not started: again
                    if (b.CancelRequestedBy.Length > 0)
                    {
                        connection.Channel.Writer.TryWrite(CancelCommand(b, token)); // and asked to stop: it stops before it starts
                    }
                }
                else if (!Finished(b) && b.Builder == identity && b.CancelRequestedBy.Length > 0 && stillRunning.Contains(token))
                {
                    connection.Channel.Writer.TryWrite(CancelCommand(b, token)); // asked to stop while the stream was down (running, or waiting there)
                }
                else if (b.State == BuildState.Running && b.Builder == identity && list.Count == 1 && running is not null && !stillRunning.Contains(token))
                {
                    // The builder came back without this build: it restarted while the build ran.
                    var failed = b.Clone();
                    failed.State = b.CancelRequestedBy.Length > 0 ? BuildState.Cancelled : BuildState.Failed;
                    failed.Error = b.CancelRequestedBy.Length > 0
                        ? $"asked to stop by {b.CancelRequestedBy}; the builder reconnected without this build"
                        : "the builder reconnected without this build (it restarted while the build ran); outcome unknown";
                    failed.FinishedAt = Now();
                    changed.Add((failed, token));
                }
            }
        }

        // Durable, then visible: a build whose failure could not be stored stays running here and in the store, and
        // is judged again when the builder next connects.
        foreach (var (failed, token) in changed)
        {
            using var serial = await _perBuild.EnterAsync(token).ConfigureAwait(false);
            var id = long.Parse(failed.Id, System.Globalization.CultureInfo.InvariantCulture);
            long rank;
            lock (_lock)
            {
                if (!_builds.TryGetValue(id, out var current) || current.State != BuildState.Running)
                {
                    continue; // progress ended it meanwhile
                }

                failed.LogLinesDropped = current.LogLinesDropped;
                failed.Images.Clear();
                failed.Images.AddRange(current.Images);
                rank = SaveBuild.InGeneration(_ranks.GetValueOrDefault(id), BuildProgress.Rank(failed));
            }

            bool stored;
            try
            {
                stored = await PersistLoggedAsync(failed, token, rank).ConfigureAwait(false);
            }
            catch (StoreConflictException)
            {
                await TakeStoredAsync(id, token).ConfigureAwait(false); // it ended (or moved on) through another instance meanwhile
                continue;
            }

            if (stored)
            {
                lock (_lock)
                {
                    SetIfForward(id, failed, rank);
                }

                _logs.Finish(id);
                Publish(failed.Clone());
            }
        }

        var handed = 0;
        foreach (var id in offer)
        {
            handed += await TryDispatchAsync(id, connection).ConfigureAwait(false) ? 1 : 0;
        }

        Log.BuilderConnected(_logger, identity, handed + changed.Count);
        return connection;
    }

    /// <summary>
    /// A builder's stream ended. Commands handed to it that it never read (they were claimed for it as it left) are
    /// given back and offered again; one it read may have reached it, and waits for its return (sent again unless it
    /// lists it as running).
    /// </summary>
    public async Task DisconnectAsync(BuilderConnection connection)
    {
        var unsent = new List<long>();
        lock (_lock)
        {
            if (_connections.TryGetValue(connection.Identity, out var list))
            {
                list.Remove(connection);
                if (list.Count == 0)
                {
                    _connections.Remove(connection.Identity);
                }
            }

            connection.Channel.Writer.TryComplete(); // under the lock: a dispatch either wrote before this or sees it completed
            while (connection.Channel.Reader.TryRead(out var command))
            {
                if (command.BodyCase == Command.BodyOneofCase.Build // an unread cancel is sent again when it reconnects
                    && long.TryParse(command.BuildId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                {
                    unsent.Add(id);
                }
            }
        }

        Log.BuilderDisconnected(_logger, connection.Identity);
        foreach (var id in unsent)
        {
            await GiveBackAsync(id, connection.Identity).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Applies a builder's progress; returns null, or why it was refused (then nothing changed). Durable first, then
    /// visible: the new lines and the build's new state are written in one transaction, and only once it committed
    /// does this instance take them in, hand the lines to followers, tell watchers and end the followers of a
    /// finished build. A write the store refuses changes nothing, so the same progress sent again is applied in full.
    /// </summary>
    public async Task<Refusal?> ProgressAsync(string identity, CommandProgress progress)
    {
        if (BuildProgress.CheckState(progress) is { } invalid)
        {
            return invalid;
        }

        if (_store.SharedByInstances && progress.CommandId.Length is > 0 and <= 64
            && (NotSeenHere(progress.CommandId, identity) || (progress.State == BuildState.Cancelled && !StopAskedHere(progress.CommandId))))
        {
            // Dispatched by another instance and not known here yet (the stream moved before its notification).
            var row = await Task.Run(() => _store.LoadBuildByToken(progress.CommandId)).ConfigureAwait(false);
            if (row is not null)
            {
                await RefreshAsync(row.Id, row).ConfigureAwait(false);
            }
        }

        using var serial = await _perBuild.EnterAsync(progress.CommandId).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await ProgressOnceAsync(identity, progress).ConfigureAwait(false);
            }
            catch (StoreConflictException ex)
            {
                // Another instance moved the build on (a later progress through it, or its end) while this one was
                // deciding or committing: nothing of this was stored. Decide again against the stored row, which
                // usually refuses what is now going back (a late Running after Succeeded).
                Log.DecidedAgain(_logger, progress.CommandId.Length > 8 ? progress.CommandId[..8] : progress.CommandId, ex.Message);
                long id;
                lock (_lock)
                {
                    if (attempt == 3 || !_byToken.TryGetValue(progress.CommandId, out id))
                    {
                        id = -1;
                    }
                }

                if (id < 0)
                {
                    return new Refusal(StatusCode.Aborted, "the build changed on another coordinator instance meanwhile; nothing was stored, send again");
                }

                await TakeStoredAsync(id, progress.CommandId).ConfigureAwait(false);
            }
        }
    }

    private async Task<Refusal?> ProgressOnceAsync(string identity, CommandProgress progress)
    {
        long id;
        Build before;
        Build next;
        string token;
        long rank;
        lock (_lock)
        {
            if (!_byToken.TryGetValue(progress.CommandId, out id) || !_builds.TryGetValue(id, out var b))
            {
                return new Refusal(StatusCode.NotFound, "command_id: no such command");
            }

            var decision = BuildProgress.Apply(b, identity, progress, Now());
            if (decision.Refusal is not null || decision.Next is null)
            {
                return decision.Refusal; // refused, or already done
            }

            if (InventoryCheck.NotPushedHere(progress, decision.Next) is { } foreign)
            {
                return new Refusal(StatusCode.InvalidArgument, foreign); // nothing of this call is stored
            }

            before = b.Clone();
            next = decision.Next;
            token = _tokens[id];
            rank = SaveBuild.InGeneration(_ranks.GetValueOrDefault(id), BuildProgress.Rank(next));
        }

        var lines = await _logs.PlanAsync(id, progress.LogLines, progress.FirstLine).ConfigureAwait(false);
        next.LogLinesDropped = Math.Max(next.LogLinesDropped, lines.Dropped);
        var changed = !before.Equals(next);
        var ops = new List<StoreOp>(2);
        if (lines.Rows.Count > 0)
        {
            ops.Add(new AppendBuildLog(id, lines.Rows)); // lines first: another instance reads them before it hears the build ended
        }

        if (changed)
        {
            ops.Add(SaveOf(next, token, rank));
        }

        // The packages of the digests pushed (issue 27), in the same transaction: checked by AgentApi, from this build's builder.
        var recordedAt = _time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var inventory in progress.Inventories)
        {
            ops.Add(new SaveImageInventory(inventory.Repository, inventory.Digest, inventory.Path, recordedAt,
                [.. inventory.Packages.Select(p => (p.Name, p.Version, p.Architecture))]));
        }

        // The digests a prune deleted (issue 27): their inventories go in the same transaction (checked by InventoryCheck).
        foreach (var image in progress.Images.Where(i => i.Deleted.Count > 0))
        {
            ops.Add(new ForgetImageInventories(image.Name, [.. image.Deleted]));
        }

        if (ops.Count > 0)
        {
            await _writer.WriteAsync(ops.Count == 1 ? ops[0] : new StoreBatch(ops)).ConfigureAwait(false);
        }

        // Committed. Lines first, so a follower has every line before it hears the build ended.
        _logs.Committed(id, lines);
        if (changed)
        {
            bool shown;
            lock (_lock)
            {
                shown = SetIfForward(id, next, rank);
            }

            if (shown)
            {
                Publish(next.Clone());
            }
        }

        if (BuildProgress.Finished(next))
        {
            _logs.Finish(id);
        }

        return null;
    }

    /// <summary>Deletes finished builds (and their logs) requested before <paramref name="cutoff"/>.</summary>
    public async Task ForgetBeforeAsync(DateTimeOffset cutoff, StoreOp? fence = null)
    {
        List<long> gone;
        lock (_lock)
        {
            gone = _builds.Where(b => b.Value.RequestedAt.ToDateTimeOffset() < cutoff && Finished(b.Value)).Select(b => b.Key).ToList();
        }

        if (gone.Count == 0)
        {
            return;
        }

        await _writer.WriteAsync(fence is null ? new DeleteBuilds(gone) : new StoreBatch([fence, new DeleteBuilds(gone)])).ConfigureAwait(false); // deleted, then forgotten here
        lock (_lock)
        {
            foreach (var id in gone)
            {
                _builds.Remove(id);
                _ranks.Remove(id);
                if (_tokens.Remove(id, out var token))
                {
                    _byToken.Remove(token);
                }
            }
        }

        _logs.Forget(gone);
    }

    private bool NotSeenHere(string token, string identity)
    {
        lock (_lock)
        {
            return !_byToken.TryGetValue(token, out var id) || !_builds.TryGetValue(id, out var b) || b.DispatchedAt is null || b.Builder != identity;
        }
    }

    // Whether this instance knows that the build of this token was asked to stop (else it may not have heard yet).
    private bool StopAskedHere(string token)
    {
        lock (_lock)
        {
            return _byToken.TryGetValue(token, out var id) && _builds.TryGetValue(id, out var b) && b.CancelRequestedBy.Length > 0;
        }
    }

    private static bool Finished(Build b) => BuildProgress.Finished(b);

    private static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    private static SaveBuild SaveOf(Build b, string token, long rank) => new(
        long.Parse(b.Id, System.Globalization.CultureInfo.InvariantCulture), b.RequestedAt.ToDateTimeOffset().ToUnixTimeMilliseconds(), b.ToByteArray(), token, rank);

    /// <summary>Takes in the stored row of a build after the store refused a write as going back (another instance moved it on).</summary>
    private async Task TakeStoredAsync(long id, string token)
    {
        var row = await Task.Run(() => _store.SharedByInstances ? _store.LoadBuildByToken(token) : null).ConfigureAwait(false);
        if (row is not null)
        {
            await RefreshAsync(id, row).ConfigureAwait(false);
        }
    }

    // Memory moves only forward too: a commit of ours that a later state overtook (taken in meanwhile) is not shown.
    private bool SetIfForward(long id, Build next, long rank)
    {
        if (_ranks.TryGetValue(id, out var held) && held > rank)
        {
            return false;
        }

        _builds[id] = next;
        _ranks[id] = rank;
        return true;
    }

    /// <summary>
    /// A build handed to <paramref name="identity"/> whose command never reached it (its stream ended just then): given
    /// back, queued for anyone again (the next generation of its rank, so still forward), and offered to a builder here;
    /// other instances offer it to theirs from the notification. Left as it is when the store moved it on meanwhile.
    /// </summary>
    private async Task GiveBackAsync(long id, string identity)
    {
        if (await EndAskedToStopAsync(id, identity).ConfigureAwait(false))
        {
            return;
        }

        Build? released = null;
        var askedInStore = false;
        try
        {
            var claimed = await Task.Run(() => _store.TryClaimBuild(id, stored =>
            {
                var current = Build.Parser.ParseFrom(stored);
                if (current.State != BuildState.Queued || current.DispatchedAt is null || current.Builder != identity)
                {
                    return null;
                }

                if (current.CancelRequestedBy.Length > 0)
                {
                    askedInStore = true; // asked to stop through another instance: it ends, it does not go back to the queue
                    return null;
                }

                current.Builder = string.Empty;
                current.DispatchedAt = null;
                released = current;
                return current.ToByteArray();
            }, giveBack: true)).ConfigureAwait(false);
            if (askedInStore)
            {
                string? token;
                lock (_lock)
                {
                    token = _tokens.GetValueOrDefault(id);
                }

                await TakeStoredAsync(id, token ?? string.Empty).ConfigureAwait(false);
                await EndAskedToStopAsync(id, identity).ConfigureAwait(false);
                return;
            }

            if (!claimed || released is null)
            {
                return;
            }
        }
        catch (Exception ex) when (ex is StoreUnavailableException or System.Data.Common.DbException)
        {
            Log.DispatchFailed(_logger, id, ex.Message); // stays handed to it: sent again when it reconnects
            return;
        }

        BuilderConnection? target;
        lock (_lock)
        {
            var rank = SaveBuild.NextGeneration(_ranks.GetValueOrDefault(id));
            _builds[id] = released;
            _ranks[id] = rank;
            target = LocalBuilderFor(released);
        }

        Log.GivenBack(_logger, id, identity);
        Publish(released.Clone());
        if (target is not null)
        {
            await TryDispatchAsync(id, target).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A build handed to <paramref name="identity"/> that an admin asked to stop, and that never reached it: no builder
    /// holds it, so it ends cancelled here rather than going back to the queue. False when it was not asked to stop
    /// (or moved on meanwhile).
    /// </summary>
    private async Task<bool> EndAskedToStopAsync(long id, string identity)
    {
        Build next;
        long held;
        string token;
        lock (_lock)
        {
            if (!_builds.TryGetValue(id, out var b) || Finished(b) || b.CancelRequestedBy.Length == 0 || b.Builder != identity || b.State != BuildState.Queued)
            {
                return false;
            }

            token = _tokens[id];
            held = _ranks.GetValueOrDefault(id);
            next = b.Clone();
            next.State = BuildState.Cancelled;
            next.FinishedAt = Now();
            next.Error = $"cancelled by {b.CancelRequestedBy} before its builder {identity} got it" + (b.CancelReason.Length > 0 ? $": {b.CancelReason}" : string.Empty);
        }

        var rank = SaveBuild.InGeneration(held, BuildProgress.Rank(next));
        try
        {
            await _writer.WriteAsync(SaveOf(next, token, rank) with { ExpectedRank = held }).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is StoreConflictException or StoreUnavailableException or System.Data.Common.DbException)
        {
            Log.DispatchFailed(_logger, id, ex.Message); // moved on elsewhere, or not stored: as it is (sent again when its builder reconnects)
            return true;
        }

        lock (_lock)
        {
            SetIfForward(id, next, rank);
        }

        _logs.Finish(id);
        Publish(next.Clone());
        return true;
    }

    private async Task<bool> PersistLoggedAsync(Build b, string token, long rank)
    {
        try
        {
            await _writer.WriteAsync(SaveOf(b, token, rank)).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or StoreUnavailableException or InvalidOperationException)
        {
            Log.PersistFailed(_logger, b.Id, ex);
            return false;
        }
    }

    // Published under the lock, and as the newest this instance holds of that build: two changes applied one after the
    // other (a local commit, a change another instance made read by the listener) are otherwise published each after its
    // lock was let go, maybe the other way round, and a watcher would see the build go back (MonotonicTests saw it under
    // load). A late publish then repeats the newest state; it never shows an older one, nor a build forgotten since.
    private void Publish(Build b)
    {
        lock (_lock)
        {
            if (!long.TryParse(b.Id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
                || !_builds.TryGetValue(id, out var held))
            {
                return; // forgotten meanwhile (retention, or removed through another instance): nothing newer to show
            }

            _feed.Publish(new WatchEvent { At = Now(), Build = held.Clone() });
        }
    }

    // What a prune carries (issue 27): what the nodes hold as they are at the hand-over, not as they were when an admin
    // asked. Null for any other command.
    private ImageProtection? ProtectionFor(Build b) => b.Request?.Prune is null ? null : _state.ImageProtection();

    private static Command ToCommand(Build b, string token, ImageProtection? protection) => new()
    {
        Id = token,
        BuildId = b.Id,
        IssuedAt = b.RequestedAt,
        RequestedBy = b.RequestedBy,
        Build = b.Request,
        Protection = protection, // a prune's: the builder deletes none of it, and nothing at all when it carries a refusal
    };

    private Timestamp Now() => Timestamp.FromDateTimeOffset(_time.GetUtcNow());

    private static partial class Log
    {
        [LoggerMessage(2301, LogLevel.Information, "build {Id} requested by {Identity}: {Images} on {Builder}")]
        public static partial void Requested(ILogger logger, string id, string identity, string images, string builder);

        [LoggerMessage(2302, LogLevel.Information, "builder {Identity} connected; {Count} build(s) handed over or closed")]
        public static partial void BuilderConnected(ILogger logger, string identity, int count);

        [LoggerMessage(2303, LogLevel.Information, "builder {Identity} disconnected")]
        public static partial void BuilderDisconnected(ILogger logger, string identity);

        [LoggerMessage(2306, LogLevel.Warning, "build {Id}: not handed over now ({Reason}); it stays queued")]
        public static partial void DispatchFailed(ILogger logger, long id, string reason);

        [LoggerMessage(2305, LogLevel.Error, "build {Id}: could not be saved")]
        public static partial void PersistFailed(ILogger logger, string id, Exception ex);

        [LoggerMessage(2308, LogLevel.Warning, "build {Id} was handed to {Identity}, whose command stream ended before it got it: queued again for any builder")]
        public static partial void GivenBack(ILogger logger, long id, string identity);

        [LoggerMessage(2307, LogLevel.Information, "progress of command {Token}… decided again against the stored build: {Reason}")]
        public static partial void DecidedAgain(ILogger logger, string token, string reason);

        [LoggerMessage(2309, LogLevel.Information, "build {Id}: cancellation requested by {By}; now {State} (builder: {Builder})")]
        public static partial void CancelRequested(ILogger logger, string id, string by, string state, string builder);
    }
}
