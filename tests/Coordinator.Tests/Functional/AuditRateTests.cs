using Grpc.Core;
using Microsoft.Data.Sqlite;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// Denied and invalid build requests are audited, but a caller asking again and again cannot fill the audit table:
/// one row a minute per (identity, action, result), the next one counting what was left out. Accepted requests are
/// audited every time.
/// </summary>
public sealed class AuditRateTests
{
    private static async Task<List<(string Identity, string Result, string Detail)>> RowsAsync(CoordinatorHarness h)
    {
        var rows = new List<(string, string, string)>();
        await using var c = new SqliteConnection($"Data Source={h.DatabasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT identity, result, detail FROM audit WHERE action = 'request-build' ORDER BY id";
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            rows.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
        }

        return rows;
    }

    [Fact]
    public async Task Denied_and_invalid_build_requests_are_audited_once_a_minute_per_caller_with_the_rest_counted()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true);
        var viewer = h.AdminClient(CoordinatorHarness.Viewer);
        var other = h.AdminClient(CoordinatorHarness.Viewer2);
        var admin = h.AdminClient(CoordinatorHarness.Admin);
        var good = new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } } };
        var bad = new RequestBuildRequest { Build = new BuildRequest { Images = { "../etc" } } };
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() => viewer.RequestBuildAsync(good).ResponseAsync)).StatusCode);
            Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => admin.RequestBuildAsync(bad).ResponseAsync)).StatusCode);
        }

        Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() => other.RequestBuildAsync(good).ResponseAsync)).StatusCode);
        await admin.RequestBuildAsync(good);
        await admin.RequestBuildAsync(good);

        var rows = await RowsAsync(h);
        Assert.Single(rows, r => r.Identity == CoordinatorHarness.Viewer && r.Result == "denied");
        Assert.Single(rows, r => r.Identity == CoordinatorHarness.Viewer2 && r.Result == "denied"); // per identity
        Assert.Single(rows, r => r.Identity == CoordinatorHarness.Admin && r.Result == "invalid");
        Assert.Equal(2, rows.Count(r => r.Result == "accepted")); // every accepted request

        // A minute later the next refusal is written and says how many were left out.
        h.Time!.Advance(TimeSpan.FromSeconds(61));
        await Assert.ThrowsAsync<RpcException>(() => viewer.RequestBuildAsync(good).ResponseAsync);
        await Assert.ThrowsAsync<RpcException>(() => viewer.RequestBuildAsync(good).ResponseAsync);
        rows = await RowsAsync(h);
        var denied = rows.Where(r => r.Identity == CoordinatorHarness.Viewer && r.Result == "denied").ToList();
        Assert.Equal(2, denied.Count);
        Assert.EndsWith("(and 29 more like it since the last row)", denied[1].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARefusalWhoseAuditRowCouldNotBeStored_IsCountedInTheNextRow_WhichIsWrittenAtOnce()
    {
        await using var h = await CoordinatorHarness.StartAsync(fakeTime: true);
        var viewer = h.AdminClient(CoordinatorHarness.Viewer);
        var good = new RequestBuildRequest { Build = new BuildRequest { Images = { "python311/base" } } };
        await using (SqliteWriteLock.Take(h.DatabasePath))
        {
            // The row cannot be written: the call says so (nothing was stored), and the refusal is not forgotten.
            var failed = await Assert.ThrowsAsync<RpcException>(() => viewer.RequestBuildAsync(good).ResponseAsync);
            Assert.Equal(StatusCode.Unavailable, failed.StatusCode);
        }

        await Assert.ThrowsAsync<RpcException>(() => viewer.RequestBuildAsync(good).ResponseAsync); // no minute waited
        var denied = (await RowsAsync(h)).Where(r => r.Identity == CoordinatorHarness.Viewer && r.Result == "denied").ToList();
        var row = Assert.Single(denied);
        Assert.EndsWith("(and 1 more like it since the last row)", row.Detail, StringComparison.Ordinal);
    }
}
