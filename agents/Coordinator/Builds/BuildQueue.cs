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
    private readonly Dictionary<string, List<BuilderConnection>> _connections = new(StringComparer.Ordinal);
    private readonly StoreWriter _writer;
    private readonly BuildLogs _logs;
    private readonly ChangeFeed _feed;
    private readonly TimeProvider _time;
    private readonly ILogger<BuildQueue> _logger;
    private long _lastId;

    public BuildQueue(StoreWriter writer, BuildLogs logs, ChangeFeed feed, TimeProvider time, ILogger<BuildQueue> logger)
    {
        _writer = writer;
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
                if (token is null)
                {
                    token = NewToken();
                    missingTokens.Add(new SaveBuild(row.Id, build.RequestedAt.ToDateTimeOffset().ToUnixTimeMilliseconds(), row.Body, token));
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

    public async Task<Build> RequestAsync(string requestedBy, RequestBuildRequest request)
    {
        Build build;
        string token;
        BuilderConnection? target;
        lock (_lock)
        {
            var id = ++_lastId;
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
            _builds[id] = build;
            _tokens[id] = token;
            _byToken[token] = id;
            target = request.Builder.Length > 0
                ? _connections.GetValueOrDefault(request.Builder)?.LastOrDefault()
                : _connections.Values.SelectMany(c => c).OrderBy(c => c.Identity, StringComparer.Ordinal).FirstOrDefault();
            if (target is not null)
            {
                HandOver(build, target);
            }

            build = build.Clone();
        }

        _logs.Track(long.Parse(build.Id, System.Globalization.CultureInfo.InvariantCulture));
        await PersistAsync(build, token).ConfigureAwait(false);
        Log.Requested(_logger, build.Id, requestedBy, string.Join(" ", build.Request.Images), target?.Identity ?? "(first builder to connect)");
        Publish(build);
        return build;
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
    /// has taken, and again those already handed to it that have not started.
    /// </summary>
    public BuilderConnection Connect(string identity)
    {
        var connection = new BuilderConnection(identity);
        var changed = new List<(Build Build, string Token)>();
        lock (_lock)
        {
            if (!_connections.TryGetValue(identity, out var list))
            {
                _connections[identity] = list = [];
            }

            list.Add(connection);
            foreach (var (id, b) in _builds)
            {
                if (b.State == BuildState.Queued && b.DispatchedAt is null && (b.RequestedBuilder.Length == 0 || b.RequestedBuilder == identity))
                {
                    HandOver(b, connection);
                    changed.Add((b.Clone(), _tokens[id]));
                }
                else if (b.State == BuildState.Queued && b.Builder == identity)
                {
                    connection.Channel.Writer.TryWrite(ToCommand(b, _tokens[id])); // handed over before, not started: again
                }
                else if (b.State == BuildState.Running && b.Builder == identity && list.Count == 1)
                {
                    // The builder's previous stream ended while this build ran; if it is still running the
                    // builder's next progress report sets it back.
                    b.State = BuildState.Failed;
                    b.Error = "the builder reconnected while this build was running; outcome unknown";
                    b.FinishedAt = Now();
                    changed.Add((b.Clone(), _tokens[id]));
                    _logs.Finish(id);
                }
            }
        }

        Log.BuilderConnected(_logger, identity, changed.Count);
        foreach (var (b, token) in changed)
        {
            _ = PersistLoggedAsync(b, token);
            Publish(b);
        }

        return connection;
    }

    public void Disconnect(BuilderConnection connection)
    {
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
        }

        connection.Channel.Writer.TryComplete();
        Log.BuilderDisconnected(_logger, connection.Identity);
    }

    /// <summary>Applies a builder's progress; returns null, or why it was refused (then nothing changed).</summary>
    public async Task<Refusal?> ProgressAsync(string identity, CommandProgress progress)
    {
        if (progress.State is not (BuildState.Unspecified or BuildState.Running or BuildState.Succeeded or BuildState.Failed))
        {
            return new Refusal(StatusCode.InvalidArgument, $"state: {progress.State} is not something a builder reports");
        }

        long id;
        Build snapshot;
        bool publish, finished;
        string token;
        lock (_lock)
        {
            if (!_byToken.TryGetValue(progress.CommandId, out id) || !_builds.TryGetValue(id, out var b))
            {
                return new Refusal(StatusCode.NotFound, "command_id: no such command");
            }

            if (b.DispatchedAt is null)
            {
                return new Refusal(StatusCode.FailedPrecondition, $"build {b.Id} has not been handed to a builder yet");
            }

            if (b.Builder != identity)
            {
                return new Refusal(StatusCode.PermissionDenied, $"build {b.Id} was handed to {b.Builder}, not to {identity}");
            }

            if (Finished(b))
            {
                return new Refusal(StatusCode.FailedPrecondition, $"build {b.Id} has already {(b.State == BuildState.Succeeded ? "succeeded" : "failed")}");
            }

            var before = b.Clone();
            if (progress.State is not BuildState.Unspecified)
            {
                b.StartedAt ??= Now();
                b.State = progress.State;
                if (Finished(b))
                {
                    b.FinishedAt = Now();
                    b.Error = ReportLimits.Cut(progress.Error, ReportLimits.MaxMessage);
                }
            }

            foreach (var image in progress.Images)
            {
                var fitted = Fit(image);
                var i = IndexOf(b, fitted.Path);
                if (i >= 0)
                {
                    b.Images[i] = fitted;
                }
                else if (b.Images.Count < MaxImageResults)
                {
                    b.Images.Add(fitted);
                }
            }

            finished = Finished(b);
            publish = !before.Equals(b);
            token = _tokens[id];
            snapshot = b.Clone();
        }

        // Lines first, so a follower has every line before it hears the build ended.
        var dropped = await _logs.AppendAsync(id, progress.LogLines).ConfigureAwait(false);
        if (dropped != snapshot.LogLinesDropped)
        {
            lock (_lock)
            {
                _builds[id].LogLinesDropped = dropped;
            }

            snapshot.LogLinesDropped = dropped;
            publish = true;
        }

        if (publish)
        {
            await PersistAsync(snapshot, token).ConfigureAwait(false);
            Publish(snapshot);
        }

        if (finished)
        {
            _logs.Finish(id);
        }

        return null;
    }

    /// <summary>Deletes finished builds (and their logs) requested before <paramref name="cutoff"/>.</summary>
    public async Task ForgetBeforeAsync(DateTimeOffset cutoff)
    {
        List<long> gone;
        lock (_lock)
        {
            gone = _builds.Where(b => b.Value.RequestedAt.ToDateTimeOffset() < cutoff && Finished(b.Value)).Select(b => b.Key).ToList();
            foreach (var id in gone)
            {
                _builds.Remove(id);
                if (_tokens.Remove(id, out var token))
                {
                    _byToken.Remove(token);
                }
            }
        }

        _logs.Forget(gone);
        if (gone.Count > 0)
        {
            await _writer.WriteAsync(new DeleteBuilds(gone)).ConfigureAwait(false);
        }
    }

    private void HandOver(Build b, BuilderConnection to)
    {
        b.Builder = to.Identity;
        b.DispatchedAt = Now();
        to.Channel.Writer.TryWrite(ToCommand(b, _tokens[long.Parse(b.Id, System.Globalization.CultureInfo.InvariantCulture)]));
    }

    private static int IndexOf(Build b, string path)
    {
        for (var i = 0; i < b.Images.Count; i++)
        {
            if (b.Images[i].Path == path)
            {
                return i;
            }
        }

        return -1;
    }

    private static ImageResult Fit(ImageResult r) => new()
    {
        Path = ReportLimits.Cut(r.Path, 200),
        Name = ReportLimits.Cut(r.Name, 512),
        Result = ReportLimits.Cut(r.Result, 32),
        Duration = r.Duration,
        Digest = ReportLimits.Cut(r.Digest, 200),
        Error = ReportLimits.Cut(r.Error, ReportLimits.MaxMessage),
    };

    private static bool Finished(Build b) => b.State is BuildState.Succeeded or BuildState.Failed;

    private static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    private Task PersistAsync(Build b, string token) => _writer.WriteAsync(new SaveBuild(
        long.Parse(b.Id, System.Globalization.CultureInfo.InvariantCulture), b.RequestedAt.ToDateTimeOffset().ToUnixTimeMilliseconds(), b.ToByteArray(), token));

    private async Task PersistLoggedAsync(Build b, string token)
    {
        try
        {
            await PersistAsync(b, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or StoreUnavailableException or InvalidOperationException)
        {
            Log.PersistFailed(_logger, b.Id, ex);
        }
    }

    private void Publish(Build b) => _feed.Publish(new WatchEvent { At = Now(), Build = b });

    private static Command ToCommand(Build b, string token) => new()
    {
        Id = token,
        BuildId = b.Id,
        IssuedAt = b.RequestedAt,
        RequestedBy = b.RequestedBy,
        Build = b.Request,
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

        [LoggerMessage(2305, LogLevel.Error, "build {Id}: could not be saved")]
        public static partial void PersistFailed(ILogger logger, string id, Exception ex);
    }
}
