using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Coordinator.Cluster;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;
using Toolforge.Agents.TestSupport;

/// <summary>
/// Issue 28: a second instance on the same PostgreSQL, holding every node, loses its listening connection while some
/// nodes change; how long its resync takes and how many nodes it reads — beside the whole-store read it did before (the
/// same instance made to read the whole store, as when its mark has been compacted away).
/// </summary>
/// <remarks>
/// The changes are made through the first instance while a transaction begun before them is held open, so the second
/// instance's mark (the oldest transaction its snapshots saw running) stays below them, as it does for changes made
/// while a listener is away; its listening session is then ended with pg_terminate_backend.
/// </remarks>
internal static class Resync
{
    public static async Task<string> MeasureAsync(CoordinatorHarness h, PrivatePostgres pg, string db, int nodes, int changed)
    {
        await using var b = await h.StartSiblingAsync();
        var listener = b.Services.GetServices<IHostedService>().OfType<ChangeListener>().Single();
        var viewer = b.AdminClient(CoordinatorHarness.Viewer);
        if (!await Peer.EventuallyAsync(() => viewer.ListNodes(new ListNodesRequest { Limit = 1 }).ContinueToken.Length > 0
            && viewer.ListNodes(new ListNodesRequest()).Nodes.Count >= nodes && listener.ResyncCount > 0, TimeSpan.FromMinutes(2)))
        {
            throw new InvalidOperationException("the second instance did not take in every node");
        }

        var store = h.Services.GetRequiredService<StateStore>();
        var names = viewer.ListNodes(new ListNodesRequest()).Nodes.Select(n => n.Name).Take(changed).ToList();
        var incremental = new List<(double Ms, int Nodes)>();
        for (var round = 0; round < 5; round++)
        {
            await using var c = await pg.OpenAsync(db);
            await using var tx = await c.BeginTransactionAsync();
            await using (var xid = new NpgsqlCommand("SELECT pg_current_xact_id()", c, tx))
            {
                await xid.ExecuteScalarAsync();
            }

            await ReconnectAsync(pg, db, listener); // its mark is now at or below the held transaction
            foreach (var name in names)
            {
                var r = new ReportRequest { Node = name, Agent = AgentKind.Node, AgentVersion = "0.1.0" };
                r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Failing, Message = $"round {round}" });
                await store.ApplyReportAsync(r);
            }

            await ReconnectAsync(pg, db, listener);
            var read = listener.LastResync!;
            if (read.Whole)
            {
                throw new InvalidOperationException("the resync read the whole store");
            }

            incremental.Add((read.Took.TotalMilliseconds, read.Nodes));
            await tx.RollbackAsync();
        }

        // The peer: the same instance reading the whole store (its mark compacted away).
        var whole = new List<double>();
        for (var round = 0; round < 5; round++)
        {
            await ExecAsync(pg, db, "UPDATE changes_compacted SET below = pg_current_xact_id()::text::bigint + 1000000");
            await ReconnectAsync(pg, db, listener);
            var read = listener.LastResync!;
            if (!read.Whole)
            {
                throw new InvalidOperationException("the resync did not read the whole store");
            }

            whole.Add(read.Took.TotalMilliseconds);
        }

        await ExecAsync(pg, db, "UPDATE changes_compacted SET below = 0");
        var ms = incremental.Select(x => x.Ms).Order().ToList();
        return $"median {ms[ms.Count / 2]:0.0} ms, max {ms[^1]:0.0} ms (goal: <= 200 ms), nodes read {string.Join("/", incremental.Select(x => x.Nodes).Distinct())} (goal: only the {changed}); "
            + $"the whole store read instead (as before, and when the mark is compacted away): median {whole.Order().ElementAt(whole.Count / 2):0.0} ms, {nodes} nodes";
    }

    private static async Task ExecAsync(PrivatePostgres pg, string db, string sql)
    {
        await using var c = await pg.OpenAsync(db);
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task ReconnectAsync(PrivatePostgres pg, string db, ChangeListener listener)
    {
        var before = listener.ResyncCount;
        var ended = await pg.ScalarAsync(
            $"SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = '{PostgresStore.ListenerApplicationName}'", db);
        if (ended < 1)
        {
            throw new InvalidOperationException("no listening session to end");
        }

        var sw = Stopwatch.StartNew();
        while (listener.ResyncCount == before)
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new InvalidOperationException("the listener did not resync");
            }

            await Task.Delay(10);
        }
    }
}
