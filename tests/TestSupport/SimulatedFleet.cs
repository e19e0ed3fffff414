using System.Collections.Concurrent;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// Agents as the real ones behave: each its own connection, its full state every 2 s, on failure a jittered
/// wait and the whole state again. A check's message carries a counter, so what was acknowledged can be compared
/// with what is stored; ten of them flap a second check so watchers keep seeing changes.
/// </summary>
public sealed class SimulatedFleet(CoordinatorHarness certs, string address, int size)
{
    public ConcurrentDictionary<string, long> Acked { get; } = new(StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastAck = new(StringComparer.Ordinal);
    private long _longestGapTicks;

    /// <summary>The longest time between two acknowledged reports of one agent.</summary>
    public TimeSpan LongestGap => TimeSpan.FromTicks(Interlocked.Read(ref _longestGapTicks));

    public string LongestGapNode { get; private set; } = string.Empty;

    public int AckedSince(DateTimeOffset t) => _lastAck.Count(x => x.Value > t);

    public static long SeqOf(ReportRequest r) =>
        long.Parse(r.Checks.Single(c => c.Name == "sim.seq").Message["seq=".Length..], CultureInfo.InvariantCulture);

    public Task RunAsync(CancellationToken ct) => Task.WhenAll(Enumerable.Range(0, size).Select(i => Task.Run(() => AgentAsync(i, ct))));

    private async Task AgentAsync(int i, CancellationToken ct)
    {
        var node = $"sim-{i:000}.tools.example";
        var (cert, key) = certs.Issue(node);
        using var channel = CoordinatorChannel.Create(address, cert, key, certs.CaPath, TimeSpan.FromSeconds(3));
        var client = new AgentService.AgentServiceClient(channel);
        long seq = 0;
        var window = TimeSpan.Zero; // the reconnect window the coordinator last told, as an agent keeps it
        var failing = false;
        while (!ct.IsCancellationRequested)
        {
            seq++;
            var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
            r.Checks.Add(new CheckResult { Name = "sim.seq", State = CheckState.Ok, Message = $"seq={seq}" });
            if (i < 10)
            {
                r.Checks.Add(new CheckResult { Name = "sim.flap", State = seq % 2 == 0 ? CheckState.Warning : CheckState.Ok, Message = "flapping" });
            }

            try
            {
                var answer = await client.ReportAsync(r, deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: ct);
                Acked[node] = seq;
                failing = false;
                window = answer.ReconnectWindow?.ToTimeSpan() ?? TimeSpan.Zero;
                var now = DateTimeOffset.UtcNow;
                if (_lastAck.TryGetValue(node, out var last) && (now - last).Ticks > Interlocked.Read(ref _longestGapTicks))
                {
                    Interlocked.Exchange(ref _longestGapTicks, (now - last).Ticks);
                    LongestGapNode = node;
                }

                _lastAck[node] = now;
                await Task.Delay(2000, ct); // a third of the heartbeat (6 s)
            }
            catch (RpcException ex) when (!ct.IsCancellationRequested)
            {
                // As the agents' ReportingService decides: the coordinator's hint, else the first failure spread over
                // the reconnect window, else a short backoff.
                var wait = Common.Reporting.ReportingService.NextWait(ex, TimeSpan.FromMilliseconds(Random.Shared.Next(100, 600)), failing, window, Random.Shared);
                failing = true;
                await Task.Delay(wait, ct);
            }
            catch (Exception ex) when (ex is OperationCanceledException || (ex is RpcException && ct.IsCancellationRequested))
            {
                return;
            }
        }
    }
}

