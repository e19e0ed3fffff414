using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>
/// `toolforge-coordinator migrate-store` (the real program) from a SQLite store that a real coordinator filled, into a
/// private PostgreSQL cluster; then a coordinator on PostgreSQL shows admins the same through agentctl.
/// </summary>
public sealed class MigrateStoreTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private static ReportRequest Report(string node, int findings, string kubelet)
    {
        var r = new ReportRequest { Node = node, Agent = AgentKind.Node, AgentVersion = "0.9.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = kubelet == "ok" ? CheckState.Ok : CheckState.Failing, Message = kubelet });
        for (var i = 0; i < findings; i++)
        {
            r.Findings.Add(new Finding { Kind = "missing-rule", Subject = $"tool-{i}/web:http", Message = "no KUBE-SERVICES rule", Severity = Severity.Error });
        }

        r.Events.Add(new AgentEvent { At = Timestamp.FromDateTime(DateTime.UtcNow), Kind = "oom", Message = $"{node}: oom-kill in tool-{findings}" });
        return r;
    }

    // The moment a listing was answered (top-level "at") differs between two askings; everything stored must not.
    private static string WithoutAnswerTime(string json) =>
        System.Text.RegularExpressions.Regex.Replace(json, "\n  \"at\": \"[^\"]*\"(,?)\n", "\n");

    [Fact]
    public async Task MigrateStore_CopiesEverything_VerifiesCounts_RefusesANonEmptyTarget_AndAgentctlShowsTheSame()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        foreach (var (node, findings) in new[] { ("tools-k8s-worker-1", 2), ("tools-k8s-worker-2", 0), ("tools-k8s-worker-3", 3) })
        {
            var agent = h.AgentClient(node);
            await agent.ReportAsync(Report(node, findings + 1, "ok"));
            await agent.ReportAsync(Report(node, findings, findings > 0 ? "ActiveState=failed" : "ok")); // one finding resolved
        }

        var build = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-a" }, Push = true } }); // pushed: its inventory is taken (only a push build may send one)
        var builder = h.AgentClient(CoordinatorHarness.Builder);
        using (var commands = builder.ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder }))
        {
            Assert.True(await commands.ResponseStream.MoveNext(CancellationToken.None));
            var token = commands.ResponseStream.Current.Id;
            var running = new CommandProgress { CommandId = token, Node = CoordinatorHarness.Builder, State = BuildState.Running };
            running.LogLines.AddRange(Enumerable.Range(1, 250).Select(i => $"Step {i}/250 : RUN echo {i} — ✓"));
            await builder.ReportCommandProgressAsync(running);
            var done = new CommandProgress { CommandId = token, Node = CoordinatorHarness.Builder, State = BuildState.Succeeded };
            done.Images.Add(new ImageResult { Path = "base-a", Name = "docker-registry.tools.wmflabs.org/toolforge-base-a:testing", Result = "pushed", Digest = "sha256:" + new string('a', 64) });
            var inventory = new ImageInventory { Repository = "docker-registry.tools.wmflabs.org/toolforge-base-a", Digest = "sha256:" + new string('a', 64), Path = "base-a" };
            inventory.Packages.Add(new ImagePackage { Name = "openssl", Version = "3.0.15-1~deb12u1", Architecture = "amd64" });
            inventory.Packages.Add(new ImagePackage { Name = "libc6", Version = "2.36-9+deb12u10", Architecture = "amd64" });
            done.Inventories.Add(inventory);
            await builder.ReportCommandProgressAsync(done);
        }

        await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-b" } } }); // stays queued

        var views = new[] { new[] { "nodes", "-o", "json" }, ["findings", "-o", "json"], ["builds", "-o", "json"], ["build-log", build.Id], ["node", "tools-k8s-worker-3", "-o", "json"], ["images", "--package", "openssl", "-o", "json"] };
        var before = new List<string>();
        foreach (var v in views)
        {
            var r = await h.AgentCtlAsync(CoordinatorHarness.Viewer, v);
            Assert.True(r.ExitCode == 0, r.ToString());
            before.Add(WithoutAnswerTime(r.Stdout));
        }

        Assert.Contains("Step 250/250", before[3], StringComparison.Ordinal);
        Assert.Contains("3.0.15-1~deb12u1", before[5], StringComparison.Ordinal);
        await h.StopAsync();

        var db = "migrated";
        await pg.Server.CreateDatabaseAsync(db);
        await h.EditConfigAsync(c =>
        {
            c["Coordinator"]!["Store"] = "postgresql";
            c["Coordinator"]!["PostgreSql"] = new JsonObject { ["ConnectionString"] = pg.Server.ConnectionString(db), ["PasswordFile"] = pg.Server.PasswordFile };
        });
        var migrate = await Run.DotnetToolAsync("toolforge-coordinator", ["migrate-store", "--from", "sqlite:" + h.DatabasePath, "--to", "postgresql", "--config", h.ConfigPath], TimeSpan.FromSeconds(120));
        Assert.True(migrate.ExitCode == 0, migrate.ToString());
        Assert.Contains("verified: every table has the same number of rows", migrate.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"build_log\s+250\s+->\s+250", migrate.Stdout);
        Assert.Matches(@"image_packages\s+2\s+->\s+2", migrate.Stdout);
        Assert.Equal(3, await pg.Server.ScalarAsync("SELECT COUNT(*) FROM nodes", db));
        Assert.True(await pg.Server.ScalarAsync("SELECT COUNT(*) FROM audit", db) >= 2);
        Assert.True(await pg.Server.ScalarAsync("SELECT COUNT(*) FROM finding_history", db) >= 3);

        // Again into the now full database: refused, nothing added.
        var again = await Run.DotnetToolAsync("toolforge-coordinator", ["migrate-store", "--from", "sqlite:" + h.DatabasePath, "--to", "postgresql", "--config", h.ConfigPath], TimeSpan.FromSeconds(120));
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("is not empty (nodes=3", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(250, await pg.Server.ScalarAsync("SELECT COUNT(*) FROM build_log", db));

        // A wrong --from is a usage error that names it.
        var bad = await Run.DotnetToolAsync("toolforge-coordinator", ["migrate-store", "--from", "/no/such.db", "--to", "postgresql", "--config", h.ConfigPath], TimeSpan.FromSeconds(60));
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("expected sqlite:PATH", bad.Stderr, StringComparison.Ordinal);

        await h.RestartAsync(); // now on PostgreSQL
        for (var i = 0; i < views.Length; i++)
        {
            var r = await h.AgentCtlAsync(CoordinatorHarness.Viewer, views[i]);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Equal(before[i], WithoutAnswerTime(r.Stdout));
        }

        // And the PostgreSQL instance keeps going: a new report and audit row land there, ids after the copied ones.
        await h.AgentClient("tools-k8s-worker-4").ReportAsync(Report("tools-k8s-worker-4", 0, "ok"));
        await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-c" } } });
        Assert.Equal(4, await pg.Server.ScalarAsync("SELECT COUNT(*) FROM nodes", db));
        Assert.Equal(3, await pg.Server.ScalarAsync("SELECT MAX(id) FROM builds", db));
    }
}
