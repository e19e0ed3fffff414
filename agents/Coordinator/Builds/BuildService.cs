using System.Text.RegularExpressions;
using System.Threading.Channels;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Data.Sqlite;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Builds;

/// <summary>
/// Build requests from admins, handed to the builder-agent over its command stream, and what the builder answers:
/// state, per-image results and log lines. Builds and their logs are kept in SQLite; the logs of recent builds are
/// also kept in memory so a follower sees every line in order.
/// </summary>
public sealed partial class BuildService
{
    public const int MaxLogLinesPerBuild = 200_000;
    private const int LogsInMemory = 20;

    private readonly object _lock = new();
    private readonly SortedDictionary<long, Build> _builds = [];
    private readonly Dictionary<long, LiveLog> _logs = [];
    private readonly Dictionary<string, List<BuilderConnection>> _connections = new(StringComparer.Ordinal);
    private readonly StoreWriter _writer;
    private readonly ChangeFeed _feed;
    private readonly TimeProvider _time;
    private readonly ILogger<BuildService> _logger;
    private readonly Func<SqliteConnection> _openReader;
    private long _lastId;

    private sealed class LiveLog
    {
        public List<string> Lines { get; } = [];
        public List<Channel<BuildLogLine>> Followers { get; } = [];
        public long Dropped { get; set; }
    }

    public sealed class BuilderConnection(string node)
    {
        public string Node { get; } = node;
        internal Channel<Command> Channel { get; } = System.Threading.Channels.Channel.CreateUnbounded<Command>();
        public ChannelReader<Command> Reader => Channel.Reader;
    }

    public BuildService(StoreWriter writer, ChangeFeed feed, TimeProvider time, ILogger<BuildService> logger, Func<SqliteConnection> openReader)
    {
        _writer = writer;
        _feed = feed;
        _time = time;
        _logger = logger;
        _openReader = openReader;
    }

    [GeneratedRegex(@"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$", RegexOptions.CultureInvariant)]
    private static partial Regex ImagePath();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex Tag();

    public void Load(SqliteConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT id, body FROM builds ORDER BY id";
        using var r = cmd.ExecuteReader();
        lock (_lock)
        {
            while (r.Read())
            {
                var id = r.GetInt64(0);
                _builds[id] = Build.Parser.ParseFrom((byte[])r.GetValue(1));
                _lastId = Math.Max(_lastId, id);
            }
        }
    }

    /// <summary>Null when the request is acceptable, else "field: reason".</summary>
    public static string? Validate(RequestBuildRequest request)
    {
        if (request.Build is null || request.Build.Images.Count == 0)
        {
            return "build.images: name at least one image path";
        }

        foreach (var image in request.Build.Images)
        {
            if (!ImagePath().IsMatch(image) || image.Contains("..", StringComparison.Ordinal) || image.Length > 200)
            {
                return $"build.images: \"{image}\" is not an image path such as python311-sssd/base";
            }
        }

        if (request.Build.Tag.Length > 0 && !Tag().IsMatch(request.Build.Tag))
        {
            return $"build.tag: \"{request.Build.Tag}\" is not a valid image tag";
        }

        if (request.Builder.Length > 0 && !Reports.ReportValidator.IsValidNodeName(request.Builder))
        {
            return $"builder: \"{request.Builder}\" is not a host name";
        }

        return null;
    }

    public async Task<Build> RequestAsync(string requestedBy, RequestBuildRequest request)
    {
        Build build;
        Command? command = null;
        BuilderConnection? target = null;
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
                Builder = request.Builder,
            };
            target = request.Builder.Length > 0
                ? _connections.GetValueOrDefault(request.Builder)?.LastOrDefault()
                : _connections.Values.SelectMany(c => c).OrderBy(c => c.Node, StringComparer.Ordinal).FirstOrDefault();
            if (target is not null)
            {
                build.Builder = target.Node;
                command = ToCommand(build);
            }

            _builds[id] = build;
            _logs[id] = new LiveLog();
            TrimLogs();
        }

        await PersistAsync(build).ConfigureAwait(false);
        if (command is not null)
        {
            target!.Channel.Writer.TryWrite(command);
        }

        Log.Requested(_logger, build.Id, requestedBy, string.Join(" ", build.Request.Images), target?.Node ?? "(first builder to connect)");
        Publish(build);
        return build.Clone();
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

    /// <summary>A builder opened its command stream: it gets every queued build meant for it or for any builder.</summary>
    public BuilderConnection Connect(string node)
    {
        var connection = new BuilderConnection(node);
        var changed = new List<Build>();
        lock (_lock)
        {
            if (!_connections.TryGetValue(node, out var list))
            {
                _connections[node] = list = [];
            }

            list.Add(connection);
            foreach (var b in _builds.Values)
            {
                if (b.State == BuildState.Queued && (b.Builder.Length == 0 || b.Builder == node))
                {
                    b.Builder = node;
                    connection.Channel.Writer.TryWrite(ToCommand(b));
                    changed.Add(b.Clone());
                }
                else if (b.State == BuildState.Running && b.Builder == node && list.Count == 1)
                {
                    // The builder's previous stream ended while this build ran; if it is still running the
                    // builder's next progress report sets it back.
                    b.State = BuildState.Failed;
                    b.Error = "the builder reconnected while this build was running; outcome unknown";
                    b.FinishedAt = Now();
                    changed.Add(b.Clone());
                }
            }
        }

        Log.BuilderConnected(_logger, node, changed.Count);
        foreach (var b in changed)
        {
            _ = PersistLoggedAsync(b);
            Publish(b);
        }

        return connection;
    }

    public void Disconnect(BuilderConnection connection)
    {
        lock (_lock)
        {
            if (_connections.TryGetValue(connection.Node, out var list))
            {
                list.Remove(connection);
                if (list.Count == 0)
                {
                    _connections.Remove(connection.Node);
                }
            }
        }

        connection.Channel.Writer.TryComplete();
        Log.BuilderDisconnected(_logger, connection.Node);
    }

    /// <summary>Applies a builder's progress; returns null, or why it was refused.</summary>
    public async Task<string?> ProgressAsync(string node, CommandProgress progress)
    {
        if (!long.TryParse(progress.CommandId, out var id))
        {
            return $"command_id: \"{progress.CommandId}\" is not a build id";
        }

        Build snapshot;
        var newLines = new List<(long Seq, string Line)>();
        bool publish;
        lock (_lock)
        {
            if (!_builds.TryGetValue(id, out var b))
            {
                return $"command_id: no build {id}";
            }

            if (b.Builder.Length > 0 && b.Builder != node)
            {
                return $"build {id} belongs to builder {b.Builder}, not {node}";
            }

            var before = b.Clone();
            b.Builder = node;
            if (progress.State is BuildState.Running or BuildState.Succeeded or BuildState.Failed)
            {
                if (b.StartedAt is null)
                {
                    b.StartedAt = Now();
                }

                b.State = progress.State;
                if (progress.State is BuildState.Succeeded or BuildState.Failed)
                {
                    b.FinishedAt = Now();
                    b.Error = progress.Error;
                }
                else
                {
                    b.FinishedAt = null;
                    b.Error = string.Empty;
                }
            }

            foreach (var image in progress.Images)
            {
                var i = b.Images.ToList().FindIndex(x => x.Path == image.Path);
                if (i >= 0)
                {
                    b.Images[i] = image;
                }
                else
                {
                    b.Images.Add(image);
                }
            }

            if (!_logs.TryGetValue(id, out var log))
            {
                _logs[id] = log = new LiveLog();
            }

            foreach (var line in progress.LogLines)
            {
                if (log.Lines.Count >= MaxLogLinesPerBuild)
                {
                    log.Dropped++;
                    continue;
                }

                log.Lines.Add(line);
                var entry = new BuildLogLine { Seq = log.Lines.Count, Line = line };
                newLines.Add((entry.Seq, line));
                foreach (var f in log.Followers)
                {
                    f.Writer.TryWrite(entry);
                }
            }

            if (b.State is BuildState.Succeeded or BuildState.Failed)
            {
                if (log.Dropped > 0)
                {
                    Log.LogCut(_logger, id, log.Dropped);
                }

                foreach (var f in log.Followers)
                {
                    f.Writer.TryComplete();
                }

                log.Followers.Clear();
            }

            publish = !before.Equals(b);
            snapshot = b.Clone();
        }

        await _writer.WriteAsync((c, tx) =>
        {
            WriteBuild(c, tx, snapshot);
            foreach (var (seq, line) in newLines)
            {
                StateStore.Exec(c, tx, "INSERT OR REPLACE INTO build_log(build, seq, line) VALUES ($b, $s, $l)", ("$b", id), ("$s", seq), ("$l", line));
            }
        }).ConfigureAwait(false);
        if (publish)
        {
            Publish(snapshot);
        }

        return null;
    }

    /// <summary>The build's log from the first line; with <paramref name="follow"/>, until the build ends.</summary>
    public async IAsyncEnumerable<BuildLogLine> StreamLogAsync(string id, bool follow, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        if (!long.TryParse(id, out var n))
        {
            yield break;
        }

        List<BuildLogLine>? lines = null;
        Channel<BuildLogLine>? live = null;
        lock (_lock)
        {
            if (_logs.TryGetValue(n, out var log))
            {
                lines = log.Lines.Select((l, i) => new BuildLogLine { Seq = i + 1, Line = l }).ToList();
                var finished = _builds.TryGetValue(n, out var b) && b.State is BuildState.Succeeded or BuildState.Failed;
                if (follow && !finished)
                {
                    live = Channel.CreateUnbounded<BuildLogLine>();
                    log.Followers.Add(live);
                }
            }
        }

        lines ??= ReadLogFromDatabase(n);
        foreach (var l in lines)
        {
            yield return l;
        }

        if (live is null)
        {
            yield break;
        }

        try
        {
            await foreach (var l in live.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                yield return l;
            }
        }
        finally
        {
            lock (_lock)
            {
                if (_logs.TryGetValue(n, out var log))
                {
                    log.Followers.Remove(live);
                }
            }
        }
    }

    /// <summary>Deletes builds (and their logs) requested before <paramref name="cutoff"/>.</summary>
    public async Task ForgetBeforeAsync(DateTimeOffset cutoff)
    {
        List<long> gone;
        lock (_lock)
        {
            gone = _builds.Where(b => b.Value.RequestedAt.ToDateTimeOffset() < cutoff
                && b.Value.State is BuildState.Succeeded or BuildState.Failed).Select(b => b.Key).ToList();
            foreach (var id in gone)
            {
                _builds.Remove(id);
                _logs.Remove(id);
            }
        }

        if (gone.Count > 0)
        {
            await _writer.WriteAsync((c, tx) =>
            {
                foreach (var id in gone)
                {
                    StateStore.Exec(c, tx, "DELETE FROM builds WHERE id = $i", ("$i", id));
                }
            }).ConfigureAwait(false);
        }
    }

    private List<BuildLogLine> ReadLogFromDatabase(long id)
    {
        using var c = _openReader();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT seq, line FROM build_log WHERE build = $b ORDER BY seq";
        cmd.Parameters.AddWithValue("$b", id);
        using var r = cmd.ExecuteReader();
        var lines = new List<BuildLogLine>();
        while (r.Read())
        {
            lines.Add(new BuildLogLine { Seq = r.GetInt64(0), Line = r.GetString(1) });
        }

        return lines;
    }

    private void TrimLogs()
    {
        foreach (var id in _logs.Keys.Order().ToList())
        {
            if (_logs.Count <= LogsInMemory)
            {
                break;
            }

            if (_builds.TryGetValue(id, out var b) && b.State is BuildState.Succeeded or BuildState.Failed && _logs[id].Followers.Count == 0)
            {
                _logs.Remove(id);
            }
        }
    }

    private Task PersistAsync(Build b) => _writer.WriteAsync((c, tx) => WriteBuild(c, tx, b));

    private async Task PersistLoggedAsync(Build b)
    {
        try
        {
            await PersistAsync(b).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SqliteException or InvalidOperationException)
        {
            Log.PersistFailed(_logger, b.Id, ex);
        }
    }

    private static void WriteBuild(SqliteConnection c, SqliteTransaction tx, Build b) =>
        StateStore.Exec(c, tx, "INSERT INTO builds(id, requested_at, body) VALUES ($i, $t, $b) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            ("$i", long.Parse(b.Id, System.Globalization.CultureInfo.InvariantCulture)),
            ("$t", b.RequestedAt.ToDateTimeOffset().ToUnixTimeMilliseconds()), ("$b", b.ToByteArray()));

    private void Publish(Build b) => _feed.Publish(new WatchEvent { At = Now(), Build = b });

    private static Command ToCommand(Build b) => new()
    {
        Id = b.Id,
        IssuedAt = b.RequestedAt,
        RequestedBy = b.RequestedBy,
        Build = b.Request,
    };

    private Timestamp Now() => Timestamp.FromDateTimeOffset(_time.GetUtcNow());

    private static partial class Log
    {
        [LoggerMessage(2301, LogLevel.Information, "build {Id} requested by {Identity}: {Images} on {Builder}")]
        public static partial void Requested(ILogger logger, string id, string identity, string images, string builder);

        [LoggerMessage(2302, LogLevel.Information, "builder {Node} connected; {Count} build(s) handed over or closed")]
        public static partial void BuilderConnected(ILogger logger, string node, int count);

        [LoggerMessage(2303, LogLevel.Information, "builder {Node} disconnected")]
        public static partial void BuilderDisconnected(ILogger logger, string node);

        [LoggerMessage(2304, LogLevel.Warning, "build {Id}: log longer than the limit; {Dropped} lines were not kept")]
        public static partial void LogCut(ILogger logger, long id, long dropped);

        [LoggerMessage(2305, LogLevel.Error, "build {Id}: could not be saved")]
        public static partial void PersistFailed(ILogger logger, string id, Exception ex);
    }
}
