using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>The trust issue's acceptance list against a real Kestrel on 127.0.0.1 with certificates from a throwaway CA.</summary>
public sealed partial class TrustTests
{
    private const string Worker = "tools-k8s-worker-1.example";
    private const string Worker2 = "tools-k8s-worker-2.example";

    private static ReportRequest Report(string node, AgentKind kind = AgentKind.Node, string message = "ok")
    {
        var r = new ReportRequest { Node = node, Agent = kind, AgentVersion = "0.1.0", SentAt = Timestamp.FromDateTime(DateTime.UtcNow) };
        r.Checks.Add(new CheckResult { Name = "kubelet.unit", State = CheckState.Ok, Message = message });
        return r;
    }

    private static async Task<StatusCode> StatusOf(Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        return ex.StatusCode;
    }

    private static RequestBuildRequest BuildOf(params string[] images) => new() { Build = new BuildRequest { Images = { images } } };

    [Fact]
    public async Task WorkerCertificate_CannotActAsBuilder_AndAQueuedBuildStaysUntouched()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var build = await h.AdminClient(CoordinatorHarness.Admin).RequestBuildAsync(BuildOf("base-a"));
        var worker = h.AgentClient(Worker);

        using (var commands = worker.ReceiveCommands(new ReceiveCommandsRequest { Node = Worker, Agent = AgentKind.Builder }))
        {
            Assert.Equal(StatusCode.PermissionDenied, await StatusOf(() => commands.ResponseStream.MoveNext(CancellationToken.None)));
        }

        Assert.Equal(StatusCode.PermissionDenied, await StatusOf(() => worker.ReportAsync(Report(Worker, AgentKind.Builder)).ResponseAsync));

        // Progress with the build's id and with its real command token (read from the database, as a thief would).
        var token = CommandToken(h, build.Id);
        foreach (var id in new[] { build.Id, token })
        {
            var forged = new CommandProgress { CommandId = id, Node = Worker, State = BuildState.Succeeded };
            forged.Images.Add(new ImageResult { Path = "base-a", Result = "pushed", Digest = "sha256:made-up" });
            Assert.Equal(StatusCode.PermissionDenied, await StatusOf(() => worker.ReportCommandProgressAsync(forged).ResponseAsync));
        }

        var after = await h.AdminClient(CoordinatorHarness.Viewer).GetBuildAsync(new GetBuildRequest { Id = build.Id });
        Assert.Equal(BuildState.Queued, after.State);
        Assert.Empty(after.Images);
        Assert.Null(after.DispatchedAt);

        // People's certificates are not agents.
        foreach (var person in new[] { CoordinatorHarness.Admin, CoordinatorHarness.Viewer })
        {
            Assert.Equal(StatusCode.PermissionDenied, await StatusOf(() => h.AgentClient(person).ReportAsync(Report(person)).ResponseAsync));
            Assert.Equal(StatusCode.PermissionDenied, await StatusOf(() => h.AgentClient(person).ReportAsync(Report(person, AgentKind.LogShipper)).ResponseAsync));
        }

        Assert.Empty((await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).Nodes);
    }

    [Fact]
    public async Task ConfiguredBuilder_GetsTheQueuedBuild_ReportsItToSucceeded_AndNobodyElseCanTouchItAfter()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var admin = h.AdminClient(CoordinatorHarness.Admin);
        var build = await admin.RequestBuildAsync(BuildOf("base-a"));
        var queuedToken = CommandToken(h, build.Id);

        // A second build, not yet handed over: progress with its (stolen) token is refused as not dispatched.
        var waiting = await admin.RequestBuildAsync(new RequestBuildRequest { Build = new BuildRequest { Images = { "base-b" } }, Builder = "builder-elsewhere.example" });
        var builder = h.AgentClient(CoordinatorHarness.Builder);
        Assert.Equal(StatusCode.FailedPrecondition, await StatusOf(() => builder.ReportCommandProgressAsync(
            new CommandProgress { CommandId = CommandToken(h, waiting.Id), Node = CoordinatorHarness.Builder, State = BuildState.Running }).ResponseAsync));

        using var stream = builder.ReceiveCommands(new ReceiveCommandsRequest { Node = CoordinatorHarness.Builder, Agent = AgentKind.Builder });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.True(await stream.ResponseStream.MoveNext(timeout.Token));
        var command = stream.ResponseStream.Current;
        Assert.Equal(build.Id, command.BuildId);
        Assert.Equal(queuedToken, command.Id);
        Assert.Equal(32, command.Id.Length); // 128 random bits, hex

        await builder.ReportCommandProgressAsync(new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Running, LogLines = { "step 1" } });
        var done = new CommandProgress { CommandId = command.Id, Node = CoordinatorHarness.Builder, State = BuildState.Succeeded, LogLines = { "step 2" } };
        done.Images.Add(new ImageResult { Path = "base-a", Result = "built", Digest = "sha256:abc" });
        await builder.ReportCommandProgressAsync(done);

        var viewer = h.AdminClient(CoordinatorHarness.Viewer);
        var finished = await viewer.GetBuildAsync(new GetBuildRequest { Id = build.Id });
        Assert.Equal(BuildState.Succeeded, finished.State);
        Assert.Equal(CoordinatorHarness.Builder, finished.Builder);

        // Afterwards: another node, another builder with the token, the builder itself, an unknown token.
        var forged = new CommandProgress { CommandId = command.Id, Node = Worker, State = BuildState.Failed, Error = "forged", LogLines = { "forged line" } };
        Assert.Equal(StatusCode.PermissionDenied, await StatusOf(() => h.AgentClient(Worker).ReportCommandProgressAsync(forged).ResponseAsync));
        forged.Node = CoordinatorHarness.Builder2;
        Assert.Equal(StatusCode.PermissionDenied, await StatusOf(() => h.AgentClient(CoordinatorHarness.Builder2).ReportCommandProgressAsync(forged).ResponseAsync));
        forged.Node = CoordinatorHarness.Builder;
        Assert.Equal(StatusCode.FailedPrecondition, await StatusOf(() => builder.ReportCommandProgressAsync(forged).ResponseAsync));
        forged.CommandId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        Assert.Equal(StatusCode.NotFound, await StatusOf(() => builder.ReportCommandProgressAsync(forged).ResponseAsync));

        var unchanged = await viewer.GetBuildAsync(new GetBuildRequest { Id = build.Id });
        Assert.Equal(finished, unchanged);
        var log = new List<string>();
        using var logCall = viewer.StreamBuildLog(new StreamBuildLogRequest { Id = build.Id });
        await foreach (var line in logCall.ResponseStream.ReadAllAsync())
        {
            log.Add(line.Line);
        }

        Assert.Equal(["step 1", "step 2"], log);
    }

    [Fact]
    public async Task DenyList_BySerialWithLeadingZeros_ByFingerprintStartingWithZero_ByANameThatIsNotTheFirstSan()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var bySerial = h.IssueWith("by-serial", p => p.Issue("by-serial.example"));
        (string Cert, string Key) byFingerprint;
        var n = 0;
        do
        {
            byFingerprint = h.IssueWith("by-fingerprint", p => p.Issue("by-fingerprint.example"));
        }
        while (!Fingerprint(byFingerprint).StartsWith('0') && ++n < 1000);
        Assert.StartsWith("0", Fingerprint(byFingerprint), StringComparison.Ordinal);
        var bySecondSan = h.IssueWith("by-second-san", p => p.Issue("first-san.example", extraDnsNames: ["second-san.example"]));
        (string, string)[] denied = [bySerial, byFingerprint, bySecondSan];

        // Before: each gets in (so a refusal below is the deny-list's doing).
        foreach (var files in denied)
        {
            // Through the handshake; not a viewer, so the call itself is refused.
            using var channel = h.Channel(files);
            Assert.Equal(StatusCode.PermissionDenied, await StatusOf(() => new AdminService.AdminServiceClient(channel).ListNodesAsync(new ListNodesRequest()).ResponseAsync));
        }

        using var serialCert = LoadCert(bySerial);
        var fingerprint = string.Join(':', Fingerprint(byFingerprint).ToLowerInvariant().Chunk(2).Select(c => new string(c)));
        await h.EditConfigAsync(c => c["Coordinator"]!["DeniedCertificates"] = new JsonArray("000" + serialCert.SerialNumber.ToLowerInvariant(), fingerprint, "SECOND-SAN.example"));
        Assert.Null(h.Services.GetRequiredService<Security.PolicyProvider>().Reload());

        foreach (var files in denied)
        {
            using var channel = h.Channel(files);
            var client = new AgentService.AgentServiceClient(channel);
            var status = await StatusOf(() => client.ReportAsync(Report("x.example"), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);
            Assert.True(status is StatusCode.Unavailable or StatusCode.Internal, $"{files.Item1}: {status}");
        }

        // A certificate not on the list still gets in.
        var ok = await h.AgentClient(Worker).ReportAsync(Report(Worker));
        Assert.NotNull(ok.ReceivedAt);
    }

    /// <summary>
    /// A reload reads the security keys of "Coordinator" only: the other features' keys beside them (the storage, the
    /// node-state timings, the listen address) and the Remediation section below are theirs, not unknown keys — with the
    /// shipped example's shape a reload was refused ("Coordinator:Remediation: unknown key") before each feature took its
    /// own keys. A typo among them is still refused, and the roles in force stay.
    /// </summary>
    [Fact]
    public async Task AReload_OfTheWholeSection_TakesTheNewRoles_AndStillRefusesATypo()
    {
        await using var h = await CoordinatorHarness.StartAsync(editConfig: c =>
        {
            var s = c["Coordinator"]!.AsObject();
            s["HeartbeatInterval"] = "00:00:30";
            s["MissingAfterDays"] = 3;
            s["RetentionDays"] = 30;
            s["SweepInterval"] = "00:00:05";
            s["HealthAgentPort"] = 0;
            s["Remediation"] = new JsonObject { ["Pools"] = new JsonObject { ["nfs"] = new JsonObject { ["Nodes"] = new JsonArray("tools-k8s-nfs-*") } } };
        });
        var policy = h.Services.GetRequiredService<Security.PolicyProvider>();
        await h.EditConfigAsync(c => c["Coordinator"]!["Viewers"] = new JsonArray("viewer-new.example"));
        Assert.Null(policy.Reload());
        Assert.Equal(Security.Roles.Viewer, policy.Current.RolesOf("viewer-new.example"));

        await h.EditConfigAsync(c =>
        {
            c["Coordinator"]!["Viewers"] = new JsonArray("viewer-other.example");
            c["Coordinator"]!["Veiwers"] = new JsonArray("typo.example");
        });
        var refused = policy.Reload();
        Assert.NotNull(refused);
        Assert.Contains("Coordinator:Veiwers: unknown key", refused, StringComparison.Ordinal);
        Assert.Equal(Security.Roles.Viewer, policy.Current.RolesOf("viewer-new.example"));

        // A key of another feature that the next start would refuse is refused now too (it was "reloaded", then the
        // coordinator did not come back after its next restart), and the roles in force stay.
        foreach (var (key, value, expected) in new (string, JsonNode, string)[]
        {
            ("RetentionDays", 0, "Coordinator:RetentionDays"),
            ("Store", "postgres", "Coordinator:Store: must be"),
            ("Port", "abc", "Coordinator:Port"),
        })
        {
            await h.EditConfigAsync(c =>
            {
                c["Coordinator"]!.AsObject().Remove("Veiwers");
                c["Coordinator"]![key] = value.DeepClone();
            });
            var problem = policy.Reload();
            Assert.True(problem?.Contains(expected, StringComparison.Ordinal) == true, $"{key}={value}: {problem ?? "reloaded"}");
            Assert.Equal(Security.Roles.Viewer, policy.Current.RolesOf("viewer-new.example"));
            await h.EditConfigAsync(c => c["Coordinator"]!.AsObject().Remove(key));
        }

        Assert.Null(policy.Reload()); // the file right again: viewer-other.example now
        Assert.Equal(Security.Roles.Viewer, policy.Current.RolesOf("viewer-other.example"));
    }

    [Fact]
    public async Task AmbiguousIdentity_AndNoClientAuth_AreRefusedAtTheHandshake_CnMatchingASanIsTheIdentity()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var ambiguous = h.IssueWith("ambiguous", p => p.Issue("a.example", extraDnsNames: ["b.example"], commonName: "c.example"));
        var serverOnly = h.IssueWith("server-only", p => p.Issue(Worker, clientAuth: false));
        foreach (var files in new[] { ambiguous, serverOnly })
        {
            using var channel = h.Channel(files);
            var status = await StatusOf(() => new AgentService.AgentServiceClient(channel).ReportAsync(Report(Worker), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);
            Assert.True(status is StatusCode.Unavailable or StatusCode.Internal, $"{files.Cert}: {status}");
        }

        // SANs [other, worker-2] with CN worker-2: the identity is the CN, whatever the SAN order.
        var cnInSans = h.IssueWith("cn-in-sans", p => p.Issue("other.example", extraDnsNames: [Worker2], commonName: Worker2));
        using var good = h.Channel(cnInSans);
        await new AgentService.AgentServiceClient(good).ReportAsync(Report(Worker2));
        Assert.Equal(Worker2, (await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).Nodes.Single().Name);
    }

    [Fact]
    public async Task Sighup_WithANewDenyEntry_ClosesThatIdentitysWatchWithinOneSecond_AndLeavesAnothersOpen()
    {
        await using var h = await CoordinatorHarness.StartAsync(asProcess: true);
        using var kept = h.AdminClient(CoordinatorHarness.Viewer).Watch(new WatchRequest());
        using var closed = h.AdminClient(CoordinatorHarness.Viewer2).Watch(new WatchRequest());
        using var t = new CancellationTokenSource(TimeSpan.FromSeconds(90)); // longer than the warm-up's wait below and the rest
        Assert.True(await kept.ResponseStream.MoveNext(t.Token)); // snapshots
        Assert.True(await closed.ResponseStream.MoveNext(t.Token));

        // One reload of the unchanged file first, so the bound below measures the revocation (read, check, close the
        // streams), not the first compile of the configuration binder in a JIT-run test process on a loaded machine.
        h.Process!.Signal(1);
        Assert.True(await h.Process.WaitForOutputAsync("reloaded roles and deny-list (0 deny entries)", TimeSpan.FromSeconds(30)), h.Process.Output);

        await h.EditConfigAsync(c => c["Coordinator"]!["DeniedCertificates"] = new JsonArray(CoordinatorHarness.Viewer2));
        var closedEnds = Task.Run(async () =>
        {
            try
            {
                while (await closed.ResponseStream.MoveNext(t.Token))
                {
                }

                return StatusCode.OK;
            }
            catch (RpcException ex)
            {
                return ex.StatusCode;
            }
        });
        var sw = Stopwatch.StartNew();
        h.Process.Signal(1); // SIGHUP
        var status = await closedEnds.WaitAsync(TimeSpan.FromSeconds(5));
        sw.Stop();
        Assert.Equal(StatusCode.PermissionDenied, status);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"the denied watch ended after {sw.Elapsed}");

        // The other watch is still open and still gets changes; the process did not exit on SIGHUP.
        await h.AgentClient(Worker).ReportAsync(Report(Worker));
        Assert.True(await kept.ResponseStream.MoveNext(t.Token));
        Assert.Equal(Worker, kept.ResponseStream.Current.Node.Name);
        Assert.False(h.Process.HasExited);
        Assert.Contains("reloaded roles and deny-list (1 deny entries)", h.Process.Output, StringComparison.Ordinal);

        // New calls of the denied identity are refused too, over a fresh connection and at the handshake.
        var again = await StatusOf(() => h.AdminClient(CoordinatorHarness.Viewer2).ListNodesAsync(new ListNodesRequest()).ResponseAsync);
        Assert.True(again is StatusCode.Unavailable or StatusCode.Internal or StatusCode.PermissionDenied, again.ToString());
    }

    [Fact]
    public async Task StartedWithSighupIgnored_SaysAReloadWillNotHappen_StartedNormally_SaysNothing()
    {
        await using var h = await CoordinatorHarness.StartAsync(asProcess: true);
        Assert.True(await h.Process!.WaitForOutputAsync("Application started", TimeSpan.FromSeconds(30)), h.Process.Output);
        Assert.DoesNotContain("SIGHUP is ignored", h.Process.Output, StringComparison.Ordinal); // logged before "Application started" when it is
        await h.Process.StopAsync(TimeSpan.FromSeconds(30));

        // As `nohup toolforge-coordinator` starts it: SIGHUP ignored, kept ignored across exec (coreutils' env does it here).
        await using var p = BackgroundProcess.Start("env", ["--ignore-signal=HUP", .. Run.ToolCommand("toolforge-coordinator"), "--config", h.ConfigPath]);
        Assert.True(await p.WaitForOutputAsync("SIGHUP is ignored in this process", TimeSpan.FromSeconds(60)), p.Output);
        Assert.Contains("restart to change them", p.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sighup_WithABrokenFile_KeepsThePolicyInForce()
    {
        await using var h = await CoordinatorHarness.StartAsync(asProcess: true);
        await File.WriteAllTextAsync(h.ConfigPath, "{ \"Coordinator\": { \"Admins\": [ \"x\" ], \"NoSuchKey\": 1 } }");
        h.Process!.Signal(1);
        Assert.True(await h.Process.WaitForOutputAsync("reload refused", TimeSpan.FromSeconds(30)), h.Process.Output);
        Assert.Contains("NoSuchKey", h.Process.Output, StringComparison.Ordinal);
        Assert.NotNull((await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).At);
    }

    [Fact]
    public async Task Watch_EndsWhenTheClientCertificateExpires()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var shortLived = h.IssueWith("short-lived", p => p.Issue(CoordinatorHarness.Viewer, lifetime: TimeSpan.FromSeconds(4)));
        using var channel = h.Channel(shortLived);
        using var watch = new AdminService.AdminServiceClient(channel).Watch(new WatchRequest());
        using var t = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Assert.True(await watch.ResponseStream.MoveNext(t.Token));
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await watch.ResponseStream.MoveNext(t.Token))
            {
            }
        });
        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Contains("expired", ex.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NodeFloodingReport_GetsResourceExhausted_WhileAnotherNodesReportsSucceedPromptly()
    {
        await using var h = await CoordinatorHarness.StartAsync(editConfig: c =>
        {
            c["Coordinator"]!["ReportRate"] = 5;
            c["Coordinator"]!["ReportBurst"] = 20;
        });
        var flooder = h.AgentClient(Worker);
        var calm = h.AgentClient(Worker2);
        await calm.ReportAsync(Report(Worker2, message: "connected")); // its connection made before the flood: the bound below is the flood's cost
        var exhausted = 0;
        var flood = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                try
                {
                    await flooder.ReportAsync(Report(Worker, message: $"flood {i}"));
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted)
                {
                    Interlocked.Increment(ref exhausted);
                    // The retry hint: until the bucket has a token again, at most 1 / ReportRate = 200 ms.
                    var hint = long.Parse(ex.Trailers.GetValue("grpc-retry-pushback-ms")!, System.Globalization.CultureInfo.InvariantCulture);
                    Assert.InRange(hint, 1, 200);
                }
            }
        });

        var slowest = TimeSpan.Zero;
        for (var i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            await calm.ReportAsync(Report(Worker2, message: $"calm {i}"));
            slowest = sw.Elapsed > slowest ? sw.Elapsed : slowest;
            await Task.Delay(250);
        }

        await flood;
        Assert.True(exhausted >= 150, $"only {exhausted} of 200 flood reports were refused");
        Assert.True(slowest < TimeSpan.FromSeconds(1), $"the other node's slowest report took {slowest}");
        var nodes = (await h.AdminClient(CoordinatorHarness.Viewer).ListNodesAsync(new ListNodesRequest())).Nodes;
        Assert.Equal(NodeState.Ok, nodes.Single(n => n.Name == Worker2).State);
    }

    [Fact]
    public async Task ClientClocks_AreClampedIntoRetentionAndFiveMinutesAhead()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        var r = Report(Worker);
        r.SentAt = Timestamp.FromDateTime(new DateTime(9000, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        r.Checks[0].Since = Timestamp.FromDateTime(new DateTime(1980, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        r.Events.Add(new AgentEvent { Kind = "oom-kill", Message = "future", At = Timestamp.FromDateTime(new DateTime(9000, 1, 1, 0, 0, 0, DateTimeKind.Utc)) });
        r.Events.Add(new AgentEvent { Kind = "oom-kill", Message = "past", At = Timestamp.FromDateTime(new DateTime(1980, 1, 1, 0, 0, 0, DateTimeKind.Utc)) });
        await h.AgentClient(Worker).ReportAsync(r);

        var now = DateTimeOffset.UtcNow;
        var node = await h.AdminClient(CoordinatorHarness.Viewer).GetNodeAsync(new GetNodeRequest { Name = Worker });
        var since = node.Checks.Single().Since.ToDateTimeOffset();
        Assert.InRange(since, now.AddDays(-31), now.AddDays(-29));
        var future = node.Events.Single(e => e.Message == "future").At.ToDateTimeOffset();
        Assert.InRange(future, now.AddMinutes(4), now.AddMinutes(6));
        var past = node.Events.Single(e => e.Message == "past").At.ToDateTimeOffset();
        Assert.InRange(past, now.AddDays(-31), now.AddDays(-29));
    }

    [Fact]
    public async Task EventsStoredPerNode_AreBounded()
    {
        await using var h = await CoordinatorHarness.StartAsync(editConfig: c => c["Coordinator"]!["ReportBurst"] = 100);
        var agent = h.AgentClient(Worker);
        for (var round = 0; round < 3; round++)
        {
            var r = Report(Worker);
            for (var i = 0; i < 1000; i++)
            {
                r.Events.Add(new AgentEvent { Kind = "oom-kill", Message = $"r{round} e{i}", At = Timestamp.FromDateTime(DateTime.UtcNow) });
            }

            await agent.ReportAsync(r);
        }

        await using var c = new SqliteConnection($"Data Source={h.DatabasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM events WHERE node = $n";
        cmd.Parameters.AddWithValue("$n", Worker);
        var count = Convert.ToInt32(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(count, 1000, 2000);
    }

    [Fact]
    public async Task Agentctl_ShowsControlCharactersFromNodesEscaped()
    {
        await using var h = await CoordinatorHarness.StartAsync();
        await h.AgentClient(Worker).ReportAsync(new ReportRequest
        {
            Node = Worker,
            Agent = AgentKind.Node,
            AgentVersion = "0.1.0",
            Checks = { new CheckResult { Name = "kubelet.unit", State = CheckState.Failing, Message = "bad \u001b]0;owned\u0007 title" } },
        });

        var table = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "nodes");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains(@"\x1b]0;owned\x07", table.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', table.Stdout);
        Assert.DoesNotContain('\u0007', table.Stdout);

        var node = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "node", Worker);
        Assert.Contains(@"\x1b]0;owned\x07", node.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', node.Stdout);

        foreach (var format in new[] { "json", "yaml" })
        {
            var r = await h.AgentCtlAsync(CoordinatorHarness.Viewer, "node", Worker, "-o", format);
            Assert.DoesNotContain('\u001b', r.Stdout);
            Assert.Contains(@"\u001B]0;owned\u0007", r.Stdout, StringComparison.OrdinalIgnoreCase);
        }
    }

    private static string CommandToken(CoordinatorHarness h, string buildId)
    {
        using var c = new SqliteConnection($"Data Source={h.DatabasePath};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT command_id FROM builds WHERE id = $i";
        cmd.Parameters.AddWithValue("$i", long.Parse(buildId, System.Globalization.CultureInfo.InvariantCulture));
        return (string)cmd.ExecuteScalar()!;
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 LoadCert((string Cert, string Key) files) =>
        System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(files.Cert);

    private static string Fingerprint((string Cert, string Key) files)
    {
        using var cert = LoadCert(files);
        return Convert.ToHexString(SHA256.HashData(cert.RawData));
    }
}
