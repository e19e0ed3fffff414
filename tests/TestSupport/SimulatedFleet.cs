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
/// <remarks>
/// The benchmark's fleet (issue 28) sets <paramref name="every"/> to the heartbeat (each agent's first report at a
/// random moment of it, as agents started at different times) and <paramref name="changeChance"/>: each report then
/// turns a second check over with that chance instead of ten agents flapping it every report.
/// </remarks>
public sealed class SimulatedFleet(CoordinatorHarness certs, string address, int size, TimeSpan? every = null, double changeChance = -1)
{
    private readonly TimeSpan _every = every ?? TimeSpan.FromSeconds(2);

    /// <summary>How many reports turned the second check over (the benchmark's changes).</summary>
    public long Changes => Interlocked.Read(ref _changes);

    /// <summary>How many reports were acknowledged in all.</summary>
    public long Reports => Interlocked.Read(ref _reports);

    private long _changes;
    private long _reports;

    /// <summary>Per node, the last acknowledged report's sequence number (the default fleet) or sent_at in ms (the benchmark's).</summary>
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
        if (every is not null)
        {
            await Task.Delay(Random.Shared.NextDouble() * _every, ct).ConfigureAwait(false); // started at different times
        }

        var flapped = false;
        using var channel = CoordinatorChannel.Create(address, cert, key, certs.CaPath, TimeSpan.FromSeconds(3));
        var client = new AgentService.AgentServiceClient(channel);
        long seq = 0;
        var window = TimeSpan.Zero; // the reconnect window the coordinator last told, as an agent keeps it
        var failing = false;
        while (!ct.IsCancellationRequested)
        {
            seq++;
            var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "1.0.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
            if (changeChance >= 0)
            {
                // The benchmark's agent: its checks change only when it turns the second one over; its report is told
                // apart by sent_at (what the coordinator stores of each agent's last report).
                r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = "active (running)" });
                if (Random.Shared.NextDouble() < changeChance)
                {
                    flapped = !flapped;
                    Interlocked.Increment(ref _changes);
                }

                r.Checks.Add(new CheckResult { Name = "sim.flap", State = flapped ? CheckState.Failing : CheckState.Ok, Message = "changes now and then" });
            }
            else
            {
                r.Checks.Add(new CheckResult { Name = "sim.seq", State = CheckState.Ok, Message = $"seq={seq}" });
                if (i < 10)
                {
                    r.Checks.Add(new CheckResult { Name = "sim.flap", State = seq % 2 == 0 ? CheckState.Warning : CheckState.Ok, Message = "flapping" });
                }
            }

            try
            {
                var answer = await client.ReportAsync(r, deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: ct);
                Acked[node] = changeChance >= 0 ? r.SentAt.ToDateTimeOffset().ToUnixTimeMilliseconds() : seq;
                Interlocked.Increment(ref _reports);
                failing = false;
                window = answer.ReconnectWindow?.ToTimeSpan() ?? TimeSpan.Zero;
                var now = DateTimeOffset.UtcNow;
                if (_lastAck.TryGetValue(node, out var last) && (now - last).Ticks > Interlocked.Read(ref _longestGapTicks))
                {
                    Interlocked.Exchange(ref _longestGapTicks, (now - last).Ticks);
                    LongestGapNode = node;
                }

                _lastAck[node] = now;
                await Task.Delay(_every, ct); // by default a third of the heartbeat (6 s)
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

