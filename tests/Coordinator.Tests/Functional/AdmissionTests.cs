using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Reports;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Issue 28, a restart without a stampede: reports beyond Coordinator:ReportsInFlight are refused with
/// RESOURCE_EXHAUSTED and a retry hint instead of queueing without bound (nothing of them stored), and every answer
/// tells agents the reconnect window, which grows with the fleet.
/// </summary>
public sealed class AdmissionTests
{
    private static ReportRequest Report(string node, string message)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "0.1.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = message });
        return r;
    }

    [Fact]
    public async Task AReportBeyondTheInFlightBound_IsRefusedWithAHint_AndNothingOfItIsStored_UntilItIsSentAgain()
    {
        await using var h = await CoordinatorHarness.StartAsync(editConfig: c => c["Coordinator"]!["ReportsInFlight"] = 1);
        var admission = h.Services.GetRequiredService<ReportAdmission>();
        AsyncUnaryCall<ReportResponse> first;
        await using (SqliteWriteLock.Take(h.DatabasePath))
        {
            first = h.AgentClient("worker-1.example").ReportAsync(Report("worker-1.example", "first"), deadline: DateTime.UtcNow.AddSeconds(60));
            // Started while the database is locked: the first waits for it (the positive event: it holds the one place).
            Assert.True(await Peer.EventuallyAsync(() => admission.Waiting == 1, TimeSpan.FromSeconds(10)), "the first report never waited for the database");
            var refused = await Assert.ThrowsAsync<RpcException>(() => h.AgentClient("worker-3.example").ReportAsync(Report("worker-3.example", "shed")).ResponseAsync);
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            Assert.Contains("Coordinator:ReportsInFlight", refused.Status.Detail, StringComparison.Ordinal);
            var hint = long.Parse(refused.Trailers.GetValue(ReportAdmission.PushbackTrailer)!, CultureInfo.InvariantCulture);
            Assert.InRange(hint, 1000, 30_000); // at least 1 s, at most the heartbeat
        }

        var answered = await first.ResponseAsync; // the lock is gone: the waiting report is stored and answered
        Assert.Equal(TimeSpan.FromSeconds(1), answered.ReconnectWindow.ToTimeSpan()); // 1 node / 200 a second: the 1 s floor
        var nodes = (await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).Nodes.Select(n => n.Name).ToList();
        Assert.DoesNotContain("worker-3.example", nodes); // refused: nothing of it

        // Sent again after the hint, it is stored like any other.
        await h.AgentClient("worker-3.example").ReportAsync(Report("worker-3.example", "again"));
        var node = await h.AdminClient(CoordinatorHarness.Viewer).GetNodeAsync(new GetNodeRequest { Name = "worker-3.example" });
        Assert.Equal("again", node.Checks.Single().Message);
        Assert.Equal(0, admission.Waiting);
    }

    [Fact]
    public void TheReconnectWindow_GrowsWithTheFleet_FromOneSecondUpToTheHeartbeat()
    {
        var admission = new ReportAdmission(
            Microsoft.Extensions.Options.Options.Create(new IngestOptions { ReconnectRate = 200 }),
            Microsoft.Extensions.Options.Options.Create(new State.StateOptions { HeartbeatInterval = TimeSpan.FromSeconds(30) }),
            TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<ReportAdmission>.Instance);
        Assert.Equal(TimeSpan.FromSeconds(1), admission.Window(0));
        Assert.Equal(TimeSpan.FromSeconds(1), admission.Window(150));
        Assert.Equal(TimeSpan.FromSeconds(10), admission.Window(2000));
        Assert.Equal(TimeSpan.FromSeconds(30), admission.Window(10_000)); // 50 s at 200 a second: the heartbeat caps it
        var r = new Random(7);
        Assert.All(Enumerable.Range(0, 1000).Select(_ => admission.Pushback(2000, r)), p => Assert.InRange(p, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10)));
    }
}
