using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Resilience;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl watch</summary>
internal static class WatchCommand
{
    /// <summary>Between attempts to watch again: 250 ms doubling, at most 10 s.</summary>
    private static readonly RetryBounds Rewatch = new(Initial: TimeSpan.FromMilliseconds(250), Max: TimeSpan.FromSeconds(10));

    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var chunk = AgentCtlOptions.ChunkSize("Receive the snapshot in messages of this many nodes (printed as one snapshot), 1 to 10000");
        var cmd = new Command("watch", "Print a snapshot, then every change as it happens (Ctrl-C to stop)") { output, chunk };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var format = Output.Parse(pr.GetValue(output));
            // One line when the watch is interrupted, one when it shows changes again; none per failed attempt.
            var streak = new RetryStreak(Rewatch, TimeProvider.System,
                (ex, _) => Console.Error.WriteLine($"agentctl: watch interrupted ({Connection.Describe((RpcException)ex, c.Server, c.Settings.Timeout)}); reconnecting"),
                (failures, _) => Console.Error.WriteLine($"agentctl: watching again (after {failures} failed attempt(s))"));
            var everReceived = false;
            var failovers = 0;
            var lastVersion = string.Empty; // a watch again resumes after it: the missed changes, not a whole snapshot
            var snapshotChunk = pr.GetValue(chunk);
            while (true)
            {
                var received = false;
                try
                {
                    using var call = c.Admin.Watch(new WatchRequest { ResumeFrom = lastVersion, SnapshotChunk = snapshotChunk }, cancellationToken: ct);
                    WatchEvent? parts = null; // a snapshot's messages so far: printed as one snapshot when its last came
                    await foreach (var next in call.ResponseStream.ReadAllAsync(ct))
                    {
                        received = everReceived = true;
                        streak.Succeeded();
                        if (Assemble(ref parts, next) is not { } e)
                        {
                            continue;
                        }

                        if (e.ResyncReason.Length > 0)
                        {
                            Console.Error.WriteLine($"agentctl: the watch did not resume ({Output.Escape(e.ResyncReason)}): a new snapshot follows");
                        }

                        lastVersion = e.Version.Length > 0 ? e.Version : lastVersion;
                        AgentCtlOptions.Print(format switch
                        {
                            OutputFormat.Json => Render.CompactJson(e),
                            OutputFormat.Yaml => "---\n" + Render.Message(e, format),
                            _ => Render.WatchLine(e, DateTimeOffset.UtcNow),
                        });
                        await Console.Out.FlushAsync(ct);
                    }

                    return; // the coordinator ended the watch
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && ct.IsCancellationRequested)
                {
                    return; // Ctrl-C
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Cancelled or StatusCode.DeadlineExceeded
                    && (everReceived || (Connection.NeverReached(ex) && failovers < c.ServerCount - 1)))
                {
                    // The instance went away (or never answered): say so, and watch again, through the next address
                    // if there are several. The same instance resumes after the last change seen; another one (or
                    // this one restarted) starts with a fresh snapshot.
                    var wait = streak.Failed(ex);
                    if (!received && c.ServerCount > 1)
                    {
                        failovers += everReceived ? 0 : 1;
                        c.Failover();
                    }

                    await Task.Delay(wait, ct); // Ctrl-C here ends agentctl as it always has
                }
            }
        }));
        return cmd;
    }

    /// <summary>
    /// A watch event to print, or null while a snapshot's messages are still coming: they are joined into one (the
    /// first's time and resync reason, every node, the builds, the last's version). An older coordinator sends the
    /// snapshot whole, never continued.
    /// </summary>
    internal static WatchEvent? Assemble(ref WatchEvent? parts, WatchEvent next)
    {
        if (next.EventCase != WatchEvent.EventOneofCase.Snapshot)
        {
            parts = null; // a snapshot left unfinished (not what a coordinator sends) is never glued onto the next one
            return next;
        }

        if (parts is null)
        {
            parts = next;
        }
        else
        {
            parts.Snapshot.Nodes.AddRange(next.Snapshot.Nodes);
            parts.Snapshot.Builds.AddRange(next.Snapshot.Builds);
            parts.Version = next.Version;
        }

        if (next.Snapshot.Continued)
        {
            return null;
        }

        var whole = parts;
        whole.Snapshot.Continued = false;
        parts = null;
        return whole;
    }
}
