using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// Builds push testing, verify runs each image's probe on that digest, promote copies the manifest to latest: against a
/// real dockerd and Debian's docker-registry (through a counting proxy in the engine's network namespace, so every
/// registry request is seen), with skopeo as the independent client that reads the digests back.
/// </summary>
[Collection("docker")]
public sealed class PromoteTests(DockerFixture fx) : IAsyncLifetime
{
    private readonly string _prefix = "p" + Guid.NewGuid().ToString("N")[..8];
    private readonly TempDir _repo = Fixtures.CopyRepository();
    private EngineApiCounter _proxy = null!;

    private string Netns => "--net=/run/netns/" + fx.Docker.NetworkNamespace;

    public Task InitializeAsync()
    {
        _proxy = EngineApiCounter.ForRegistry(fx.Docker.NetworkNamespace, fx.Registry.Port);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        _repo.Dispose();
    }

    private async Task<string> ConfigAsync(JsonObject? promotion = null)
    {
        promotion ??= [];
        promotion["StateFile"] ??= _repo["state/verified.json"];
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Builder"] = new JsonObject
            {
                ["Repository"] = _repo.Path,
                ["Registry"] = _proxy.Address,
                ["ImagePrefix"] = _prefix,
                ["DockerEndpoint"] = fx.Docker.Endpoint,
                ["DockerConfig"] = _repo["no-docker-config.json"],
                ["Promotion"] = promotion,
            },
        };
        await File.WriteAllTextAsync(_repo["builder.json"], config.ToJsonString());
        return _repo["builder.json"];
    }

    private Task<ProcessResult> Build(params string[] args) =>
        Run.DotnetToolAsync("toolforge-builder-agent",
            [.. args, "--repo", _repo.Path, "--docker-registry", _proxy.Address, "--image-prefix", _prefix, "--docker-host", fx.Docker.Endpoint],
            TimeSpan.FromMinutes(5));

    // verify and promote speak to the registry on the engine's namespace's loopback: they run in that namespace.
    private Task<ProcessResult> InNamespace(params string[] args) =>
        Run.ProcessAsync("nsenter", [Netns, "dotnet", Run.ToolPath("toolforge-builder-agent"), .. args], TimeSpan.FromMinutes(3));

    private async Task<string?> SkopeoDigestAsync(string path, string tag)
    {
        var skopeo = Peer.Require("skopeo", "skopeo");
        var r = await Run.ProcessAsync("nsenter", [Netns, skopeo, "inspect", "--tls-verify=false", "--raw", $"docker://{fx.Registry.Address}/{_prefix}-{path.Replace('/', '-')}:{tag}"], TimeSpan.FromSeconds(60));
        if (r.ExitCode != 0)
        {
            return null;
        }

        var d = await Run.ProcessAsync("nsenter", [Netns, skopeo, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", $"docker://{fx.Registry.Address}/{_prefix}-{path.Replace('/', '-')}:{tag}"], TimeSpan.FromSeconds(60));
        Assert.True(d.ExitCode == 0, d.ToString());
        return d.Stdout.Trim();
    }

    private async Task<List<string>> TagsAsync(string path)
    {
        var tags = JsonNode.Parse(await fx.Registry.GetAsync($"/v2/{_prefix}-{path.Replace('/', '-')}/tags/list"))!["tags"];
        return tags is JsonArray a ? a.Select(x => (string)x!).ToList() : [];
    }

    private static bool IsUpload((string Method, string Target) r) => r.Target.Contains("/blobs/uploads", StringComparison.Ordinal) || r.Method is "POST" or "PATCH";

    [Fact]
    public async Task Promote_AfterVerify_LatestIsExactlyTheTestingDigest_NoBlobUploaded_AndAFailedVerifyIsRefused()
    {
        // base-b's probe fails (exit 3); every other image runs the default probe.
        var config = await ConfigAsync(new JsonObject
        {
            ["VerifyCommands"] = new JsonObject { ["base-b"] = new JsonArray("/bin/sh", "-c", "echo base-b is broken; exit 3") },
        });

        // 1. Builds push testing only.
        var build = await Build("build", "base-a", "base-b", "--push");
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.Contains(_proxy.Requests, IsUpload); // the proxy sees blob uploads when there are some
        foreach (var image in Fixtures.FixtureImages)
        {
            Assert.Equal(["testing"], await TagsAsync(image));
        }

        // Not verified yet: refused, one line naming it, exit 1.
        var early = await InNamespace("promote", "base-a", "--config", config);
        Assert.True(early.ExitCode == 1, early.ToString());
        Assert.Contains("not promoted: base-a: never verified", early.Stderr, StringComparison.Ordinal);
        Assert.Single(early.Stderr.Trim().Split('\n'));

        // 2. Verify every image: base-b fails, the rest pass.
        var verify = await InNamespace("verify", "--all", "--config", config);
        Assert.True(verify.ExitCode == 1, verify.ToString());
        Assert.Contains("FAILED base-b sha256:", verify.Stdout, StringComparison.Ordinal);
        Assert.Contains("exited 3: base-b is broken", verify.Stdout, StringComparison.Ordinal);
        Assert.Equal(Fixtures.FixtureImages.Length - 1, verify.Stdout.Split('\n').Count(l => l.StartsWith("verified ", StringComparison.Ordinal)));
        Assert.Empty(await fx.Docker.DockerAsync("ps -aq --filter label=org.toolforge.builder.verify")); // no probe container left

        // 3. Promote everything verified: a manifest copy, nothing uploaded.
        _proxy.Reset();
        var promote = await InNamespace("promote", "--all-verified", "--config", config);
        Assert.True(promote.ExitCode == 0, promote.ToString());
        Assert.Contains($"{Fixtures.FixtureImages.Length - 1} of {Fixtures.FixtureImages.Length - 1} image(s) promoted", promote.Stdout, StringComparison.Ordinal);
        var requests = _proxy.Requests;
        Assert.DoesNotContain(requests, IsUpload);
        Assert.Equal(Fixtures.FixtureImages.Length - 1, requests.Count(r => r.Method == "PUT" && r.Target.EndsWith("/manifests/latest", StringComparison.Ordinal)));
        Assert.All(requests, r => Assert.Contains(r.Method, new[] { "GET", "HEAD", "PUT" }));
        Assert.DoesNotContain(requests, r => r.Method == "PUT" && !r.Target.EndsWith("/manifests/latest", StringComparison.Ordinal));

        foreach (var image in Fixtures.FixtureImages.Where(i => i != "base-b"))
        {
            var testing = await SkopeoDigestAsync(image, "testing");
            Assert.Matches("^sha256:[0-9a-f]{64}$", testing);
            Assert.Equal(testing, await SkopeoDigestAsync(image, "latest"));
        }

        // The image whose verify failed cannot be promoted, and has no latest.
        var failed = await InNamespace("promote", "base-b", "--config", config);
        Assert.True(failed.ExitCode == 1, failed.ToString());
        Assert.Contains("not promoted: base-b: its verify failed", failed.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", failed.Stderr, StringComparison.Ordinal);
        Assert.Null(await SkopeoDigestAsync("base-b", "latest"));

        // Promoting again changes nothing.
        _proxy.Reset();
        var again = await InNamespace("promote", "base-a", "--config", config);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("latest is already sha256:", again.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(_proxy.Requests, r => r.Method != "GET");

        // A new testing pushed after the verify: refused until it is verified too.
        var template = _repo["base-a/web/app/Dockerfile.template"];
        await File.AppendAllTextAsync(template, "\nLABEL org.toolforge.test.changed=\"1\"\n");
        var rebuilt = await Build("build", "base-a/web/app", "--single", "--push");
        Assert.True(rebuilt.ExitCode == 0, rebuilt.ToString());
        var moved = await InNamespace("promote", "base-a/web/app", "--config", config);
        Assert.True(moved.ExitCode == 1, moved.ToString());
        Assert.Contains("verify it first", moved.Stderr, StringComparison.Ordinal);
        Assert.NotEqual(await SkopeoDigestAsync("base-a/web/app", "testing"), await SkopeoDigestAsync("base-a/web/app", "latest"));
        var reverify = await InNamespace("verify", "base-a/web/app", "--config", config);
        Assert.True(reverify.ExitCode == 0, reverify.ToString());
        var promoted = await InNamespace("promote", "base-a/web/app", "--config", config);
        Assert.True(promoted.ExitCode == 0, promoted.ToString());
        Assert.Equal(await SkopeoDigestAsync("base-a/web/app", "testing"), await SkopeoDigestAsync("base-a/web/app", "latest"));
    }

    [Fact]
    public async Task Verify_AProbeThatOutlivesItsDeadline_FailsAndLeavesNoContainer()
    {
        var config = await ConfigAsync(new JsonObject
        {
            ["VerifyTimeout"] = "00:00:02",
            ["VerifyCommands"] = new JsonObject { ["base-b"] = new JsonArray("/bin/sleep", "600") },
        });
        var build = await Build("build", "base-b", "--single", "--push");
        Assert.True(build.ExitCode == 0, build.ToString());
        var verify = await InNamespace("verify", "base-b", "--config", config);
        Assert.True(verify.ExitCode == 1, verify.ToString());
        Assert.Contains("did not finish within 2 s", verify.Stdout, StringComparison.Ordinal);
        Assert.Empty(await fx.Docker.DockerAsync("ps -aq --filter label=org.toolforge.builder.verify"));
        var promote = await InNamespace("promote", "base-b", "--config", config);
        Assert.True(promote.ExitCode == 1, promote.ToString());
    }

    /// <summary>
    /// A probe is untrusted code on the builder host: it runs with no capability (CapEff 0), no privilege gain
    /// (NoNewPrivs 1) and a pids limit; its last output lines are what verify reports.
    /// </summary>
    [Fact]
    public async Task Verify_TheProbeRunsWithoutCapabilities_NorPrivilegeGain_AndAPidsLimit()
    {
        var config = await ConfigAsync(new JsonObject
        {
            ["VerifyCommands"] = new JsonObject
            {
                ["base-b"] = new JsonArray("/bin/sh", "-c", "echo $(grep -E '^(CapEff|NoNewPrivs)' /proc/self/status) pids=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max); exit 3"), // one line: verify reports the last
            },
        });
        var build = await Build("build", "base-b", "--single", "--push");
        Assert.True(build.ExitCode == 0, build.ToString());
        var verify = await InNamespace("verify", "base-b", "--config", config);
        Assert.True(verify.ExitCode == 1, verify.ToString());
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(verify.Stdout, @"CapEff:\s+0000000000000000"), verify.Stdout);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(verify.Stdout, @"NoNewPrivs:\s+1"), verify.Stdout);
        Assert.Contains($"pids={Docker.BuilderDocker.ProbePids.ToString(System.Globalization.CultureInfo.InvariantCulture)}", verify.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_TagLatestOnTheCommandLine_SaysItSkipsTheVerifyStep()
    {
        var r = await Build("build", "base-b", "--single", "--tag", "latest");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("--tag latest (build.py's) builds and pushes latest directly and skips the verify step", r.Stderr, StringComparison.Ordinal);
        var testing = await Build("build", "base-b", "--single");
        Assert.DoesNotContain("skips the verify step", testing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Promote_ARegistryThatIsDown_IsOneLine_ExitOne()
    {
        var config = await ConfigAsync();
        var json = JsonNode.Parse(await File.ReadAllTextAsync(config))!;
        json["Builder"]!["Registry"] = "127.0.0.1:1";
        await File.WriteAllTextAsync(config, json.ToJsonString());
        var r = await InNamespace("promote", "base-a", "--config", config);
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains("not promoted: base-a: 127.0.0.1:1/", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
    }
}
