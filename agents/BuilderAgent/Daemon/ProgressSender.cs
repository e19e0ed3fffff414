using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.BuilderAgent.Daemon;

/// <summary>
/// Sends a build's log lines, image results and state to the coordinator in batches (every 300 ms or 500 lines),
/// in order, retrying a failed batch; the final state goes out only after every line before it.
/// Lines are capped in memory: if the coordinator stays away, the oldest unsent lines are dropped and the log says so.
/// </summary>
internal sealed partial class ProgressSender : IBuildLog, IAsyncDisposable
{
    private const int MaxBatch = 500;
    private const int MaxPendingLines = 50_000;

    /// <summary>One inventory's packages in a progress call at most (the coordinator receives 8 MiB a call).</summary>
    private const int MaxInventoryBytes = 6 * 1024 * 1024;

    private readonly CoordinatorConnection _connection;
    private readonly string _id;
    private readonly string _buildId;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<CommandProgress> _updates = Channel.CreateUnbounded<CommandProgress>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _sender;
    private long _pendingLines;
    private long _nextLine = 1;
    private long _droppedLines;

    // Lines the sender itself has to say (an inventory refused): first in the next call, before a state queued meanwhile.
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _said = new();

    /// <summary>Between attempts to deliver one batch: 500 ms doubling, at most 10 s; given up after <see cref="MaxAttempts"/>.</summary>
    private static readonly RetryBounds Resend = new(Initial: TimeSpan.FromMilliseconds(500), Max: TimeSpan.FromSeconds(10));

    private const int MaxAttempts = 60;

    public ProgressSender(CoordinatorConnection connection, string commandId, string buildId, TimeProvider time, ILogger logger)
    {
        _time = time;
        _connection = connection;
        _id = commandId;
        _buildId = buildId;
        _logger = logger;
        _sender = Task.Run(SendLoopAsync);
    }

    public void Line(string image, string text)
    {
        if (Interlocked.Increment(ref _pendingLines) > MaxPendingLines)
        {
            Interlocked.Decrement(ref _pendingLines);
            Interlocked.Increment(ref _droppedLines);
            return;
        }

        var u = new CommandProgress();
        u.LogLines.Add(ReportLimits.Cut(image == "*" ? text : $"[{image}] {text}", ReportLimits.MaxLogLine));
        _updates.Writer.TryWrite(u);
    }

    public void Result(ImageReport report)
    {
        var u = new CommandProgress();
        u.Images.Add(new ImageResult
        {
            Path = report.Path,
            Name = report.Name,
            Result = report.Result,
            Duration = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(report.Duration),
            Digest = report.Digest,
            Error = report.Error,
            Deleted = { report.Deleted },
            Revision = report.Revision,
        });
        if (report.Inventory is { } inventory)
        {
            var sent = new ImageInventory { Repository = inventory.Subject.Repository, Digest = inventory.Subject.Digest, Path = report.Path };
            sent.Packages.AddRange(inventory.Packages.Select(p => new ImagePackage { Name = p.Name, Version = p.Version, Architecture = p.Architecture }));
            sent.Packages.AddRange(inventory.Language.DistinctBy(p => (p.Qualified, p.Version)) // a gem's platforms are one row
                .Select(p => new ImagePackage { Name = p.Qualified, Version = p.Version })); // "npm:name", no architecture
            if (sent.CalculateSize() > MaxInventoryBytes)
            {
                // Within the bounds, yet past what one call carries (the coordinator takes 8 MiB): said, and the image's
                // result still goes (a failed call would lose it).
                Line(report.Path, $"inventory of {sent.Digest} not sent to the coordinator: its {sent.Packages.Count} packages take more than {MaxInventoryBytes / (1024 * 1024)} MiB");
            }
            else
            {
                // In a call of its own, after the result: a refused inventory (a bound, a version mismatch) never takes
                // the image's result or log lines with it.
                _updates.Writer.TryWrite(u);
                u = new CommandProgress();
                u.Inventories.Add(sent);
            }
        }

        _updates.Writer.TryWrite(u);
    }

    public void State(BuildState state, string? error = null) =>
        _updates.Writer.TryWrite(new CommandProgress { State = state, Error = error ?? string.Empty });

    private async Task SendLoopAsync()
    {
        var reader = _updates.Reader;
        CommandProgress? carried = null; // an inventory read while a batch had other things: the next call, alone
        while (carried is not null || await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var batch = new CommandProgress { CommandId = _id, Node = _connection.Node };
            var lines = 0;
            while (carried is null && _said.TryDequeue(out var said))
            {
                batch.LogLines.Add(said);
            }

            if (carried is not null)
            {
                batch.Inventories.AddRange(carried.Inventories);
                carried = null;
            }

            while (batch.Inventories.Count == 0 && lines < MaxBatch && reader.TryRead(out var u))
            {
                if (u.Inventories.Count > 0)
                {
                    // An inventory (up to 20,000 packages) always goes in a call of its own.
                    if (batch.LogLines.Count > 0 || batch.Images.Count > 0)
                    {
                        carried = u;
                    }
                    else
                    {
                        batch.Inventories.AddRange(u.Inventories);
                    }

                    break;
                }

                batch.LogLines.AddRange(u.LogLines);
                lines += u.LogLines.Count;
                foreach (var image in u.Images)
                {
                    var i = batch.Images.ToList().FindIndex(x => x.Path == image.Path);
                    if (i >= 0)
                    {
                        batch.Images[i] = image;
                    }
                    else
                    {
                        batch.Images.Add(image);
                    }
                }

                if (u.State != BuildState.Unspecified)
                {
                    batch.State = u.State;
                    batch.Error = u.Error;
                    break; // a state change goes out with exactly the lines before it
                }
            }

            var dropped = batch.Inventories.Count > 0 ? 0 : Interlocked.Exchange(ref _droppedLines, 0); // an inventory goes alone
            if (dropped > 0)
            {
                batch.LogLines.Add($"[builder] {dropped} log lines dropped while the coordinator was unreachable");
            }

            if (batch.LogLines.Count > 0)
            {
                batch.FirstLine = _nextLine; // numbered once: a resend of this batch lands on the same lines
                _nextLine += batch.LogLines.Count;
            }

            await SendAsync(batch).ConfigureAwait(false);
            Interlocked.Add(ref _pendingLines, -lines);
            if (batch.State is not (BuildState.Succeeded or BuildState.Failed or BuildState.Cancelled))
            {
                await Task.Delay(300).ConfigureAwait(false);
            }
        }

        if (!_said.IsEmpty)
        {
            // Said after the last update: one more call (the coordinator keeps lines of a build that is still open).
            var last = new CommandProgress { CommandId = _id, Node = _connection.Node, FirstLine = _nextLine };
            while (_said.TryDequeue(out var said))
            {
                last.LogLines.Add(said);
            }

            _nextLine += last.LogLines.Count;
            await SendAsync(last).ConfigureAwait(false);
        }
    }

    private async Task SendAsync(CommandProgress batch)
    {
        var streak = new RetryStreak(Resend, _time,
            (ex, _) => Log.Retrying(_logger, _buildId, ((RpcException)ex).StatusCode, ((RpcException)ex).Status.Detail),
            (failures, length) => Log.Delivered(_logger, _buildId, failures, length.TotalSeconds));
        while (true)
        {
            try
            {
                await _connection.AgentClient().ReportCommandProgressAsync(batch, deadline: _connection.Deadline()).ConfigureAwait(false);
                streak.Succeeded();
                return;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal && streak.Failures < MaxAttempts - 1)
            {
                _connection.Failed(ex.StatusCode);
                await streak.FailedAndWaitAsync(ex, CancellationToken.None).ConfigureAwait(false); // a build's progress is not cut short by a stop
            }
            catch (RpcException ex) when (batch.Inventories.Count > 0)
            {
                // Only the inventory is lost (its image's result went in the call before): said in the build's log too.
                foreach (var inventory in batch.Inventories)
                {
                    Log.InventoryLost(_logger, _buildId, inventory.Path, inventory.Digest, ex.StatusCode, ex.Status.Detail);
                    _said.Enqueue(ReportLimits.Cut($"[{inventory.Path}] inventory of {inventory.Digest} not stored by the coordinator ({ex.StatusCode}: {ReportLimits.Cut(ex.Status.Detail, 300)}); the image's result stands", ReportLimits.MaxLogLine));
                }

                return;
            }
            catch (RpcException ex)
            {
                Log.Lost(_logger, _buildId, batch.LogLines.Count, ex.StatusCode, ex.Status.Detail);
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _updates.Writer.TryComplete();
        await _sender.ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(4101, LogLevel.Warning, "build {Id}: progress not delivered ({Status}: {Detail}); retrying")]
        public static partial void Retrying(ILogger logger, string id, StatusCode status, string detail);

        [LoggerMessage(4103, LogLevel.Information, "build {Id}: progress delivered again after {Failures} failed attempts ({Seconds:0.#} s)")]
        public static partial void Delivered(ILogger logger, string id, int failures, double seconds);

        [LoggerMessage(4102, LogLevel.Error, "build {Id}: gave up delivering {Lines} log lines and results ({Status}: {Detail})")]
        public static partial void Lost(ILogger logger, string id, int lines, StatusCode status, string detail);

        [LoggerMessage(4104, LogLevel.Warning, "build {Id}: the inventory of {Path} {Digest} was not stored by the coordinator ({Status}: {Detail}); the image's result was sent on its own")]
        public static partial void InventoryLost(ILogger logger, string id, string path, string digest, StatusCode status, string detail);
    }
}
