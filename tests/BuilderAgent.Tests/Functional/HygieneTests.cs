using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Hygiene;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// builder.hygiene (issue 27) against a real dockerd: the dangling images an image's rebuilds leave are removed once
/// older than DanglingAfter, with the bytes Docker reclaimed; a tagged image, and a dangling one a container still uses,
/// are kept.
/// </summary>
[Collection("docker")]
public sealed class HygieneTests(DockerFixture fx)
{
    private readonly string _name = "hygiene-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task DanglingImages_AreRemovedOnceOlderThanTheBound_WhatIsTaggedOrUsedIsKept_AndTheReclaimedBytesAreSaid()
    {
        using var context = new TempDir("hygiene-image");
        File.Copy("/bin/busybox", context["busybox"]);
        async Task<string> BuildAsync(string content)
        {
            await File.WriteAllTextAsync(context["note"], content);
            await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY busybox /bin/busybox\nCOPY note /note\n");
            await fx.Docker.DockerAsync($"build -q -t {_name}:testing {context.Path}");
            return (await fx.Docker.DockerAsync($"image inspect --format {{{{.Id}}}} {_name}:testing")).Trim();
        }

        var first = await BuildAsync("first build " + Guid.NewGuid());
        var second = await BuildAsync("second build " + Guid.NewGuid()); // first is dangling now
        await fx.Docker.DockerAsync($"create --network none --name {_name}-user {second} /bin/busybox true");
        var third = await BuildAsync("third build " + Guid.NewGuid()); // second is dangling, but a container uses it
        var state = new Common.Reporting.AgentState(TimeProvider.System, NullLogger<Common.Reporting.AgentState>.Instance);
        using var docker = new BuilderDocker(fx.Docker.Endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2));
        async Task<CheckResult> RunAsync(TimeSpan after)
        {
            var check = new HygieneCheck(docker, Microsoft.Extensions.Options.Options.Create(new HygieneOptions { DanglingAfter = after }), state, TimeProvider.System, NullLogger<HygieneCheck>.Instance);
            await check.RunGuardedAsync(CancellationToken.None);
            return state.GetCheck(HygieneCheck.Check)!;
        }

        try
        {
            // Not old enough: nothing removed.
            var young = await RunAsync(TimeSpan.FromHours(24));
            Assert.True(young.State == CheckState.Ok, young.Message);
            Assert.StartsWith("0 image record(s) deleted (dangling images older than 24 h and their layers), 0 MiB reclaimed", young.Message, StringComparison.Ordinal);
            Assert.Contains(first, await fx.Docker.DockerAsync("images -q --no-trunc --filter dangling=true"), StringComparison.Ordinal);

            var pruned = await RunAsync(TimeSpan.Zero);
            Assert.True(pruned.State == CheckState.Ok, pruned.Message);
            var images = await fx.Docker.DockerAsync("images -aq --no-trunc");
            Assert.DoesNotContain(first, images, StringComparison.Ordinal);  // dangling, old enough: gone
            Assert.Contains(second, images, StringComparison.Ordinal);       // dangling, but a container uses it
            Assert.Contains(third, images, StringComparison.Ordinal);        // tagged
            Assert.True(pruned.Values["removed"] >= 1, pruned.Message);
            Assert.True(pruned.Values["reclaimed_bytes"] > 0, pruned.Message); // the first build's own note layer at least

            // While a verify or an inventory read holds images it pulled by digest (untagged), the prune waits.
            await using (await docker.HoldImagesAsync(CancellationToken.None))
            {
                var fourth = await BuildAsync("fourth build " + Guid.NewGuid()); // third is dangling now
                var held = await RunAsync(TimeSpan.Zero);
                Assert.StartsWith("not pruned this time: a build, a verify or an inventory read is using untagged images", held.Message, StringComparison.Ordinal);
                Assert.Contains(third, await fx.Docker.DockerAsync("images -aq --no-trunc"), StringComparison.Ordinal);
                Assert.Empty(await docker.SweepReadContainersAsync(TimeSpan.Zero, DateTimeOffset.UtcNow.AddHours(1), CancellationToken.None));
            }
        }
        finally
        {
            await fx.Docker.DockerAsync($"rm -f {_name}-user");
        }
    }

    // A docker-archive of one small image whose config says it was created at <paramref name="created"/> (what `docker
    // load` keeps as the image's Created, and what the prune's until filter compares), tagged <paramref name="tag"/>.
    private static void WriteArchive(string path, string tag, string content, DateTimeOffset created)
    {
        var layer = new MemoryStream();
        using (var t = new System.Formats.Tar.TarWriter(layer, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
        {
            t.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "note") { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)) });
        }

        var layerBytes = layer.ToArray();
        var diffId = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(layerBytes));
        var config = $$$"""{"architecture":"amd64","os":"linux","created":"{{{created.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}}}","config":{},"rootfs":{"type":"layers","diff_ids":["{{{diffId}}}"]}}""";
        using var fs = File.Create(path);
        using var archive = new System.Formats.Tar.TarWriter(fs, System.Formats.Tar.TarEntryFormat.Pax);
        void Add(string name, byte[] data) => archive.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
        Add("layer.tar", layerBytes);
        Add("config.json", System.Text.Encoding.UTF8.GetBytes(config));
        Add("manifest.json", System.Text.Encoding.UTF8.GetBytes($$"""[{"Config":"config.json","RepoTags":["{{tag}}"],"Layers":["layer.tar"]}]"""));
    }

    [Fact]
    public async Task OverTheBudget_DanglingImagesYoungerThanTheAgeRuleGoToo_ButNotThoseUnderAnHour_AndWhatIsLeftOverIsAWarning()
    {
        using var dir = new TempDir("hygiene-budget");
        var tag = $"{_name}:testing";
        async Task<string> LoadAsync(string content, TimeSpan age)
        {
            WriteArchive(dir["image.tar"], tag, content + Guid.NewGuid(), DateTimeOffset.UtcNow - age);
            await fx.Docker.DockerAsync($"load -q -i {dir["image.tar"]}");
            return (await fx.Docker.DockerAsync($"image inspect --format {{{{.Id}}}} {tag}")).Trim();
        }

        var threeHours = await LoadAsync("built three hours ago ", TimeSpan.FromHours(3));
        var halfAnHour = await LoadAsync("built half an hour ago ", TimeSpan.FromMinutes(30)); // threeHours dangling now
        var current = await LoadAsync("current ", TimeSpan.FromMinutes(1));                  // halfAnHour dangling now
        var state = new Common.Reporting.AgentState(TimeProvider.System, NullLogger<Common.Reporting.AgentState>.Instance);
        using var docker = new BuilderDocker(fx.Docker.Endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2));
        async Task<CheckResult> RunAsync(double budgetGiB)
        {
            var options = Microsoft.Extensions.Options.Options.Create(new HygieneOptions { DanglingAfter = TimeSpan.FromHours(24), CacheBudgetGiB = budgetGiB });
            Assert.Empty(options.Value.Validate(HygieneOptions.Section));
            await new HygieneCheck(docker, options, state, TimeProvider.System, NullLogger<HygieneCheck>.Instance).RunGuardedAsync(CancellationToken.None);
            return state.GetCheck(HygieneCheck.Check)!;
        }

        // The engine's own count of the bytes its images take, read by curl (an independent client).
        var df = await Run.ProcessAsync("curl", ["-sf", "--unix-socket", fx.Docker.Socket, "http://docker/system/df"], TimeSpan.FromMinutes(1));
        Assert.True(df.ExitCode == 0, df.ToString());
        var layersSize = System.Text.Json.Nodes.JsonNode.Parse(df.Stdout)!["LayersSize"]!.GetValue<long>();

        // Under a budget the engine is far from: nothing beyond the age rule (24 h) goes.
        var roomy = await RunAsync(1024);
        Assert.True(roomy.State == CheckState.Ok, roomy.Message);
        Assert.Matches(@"^0 image record\(s\) deleted \(dangling images older than 24 h and their layers\), 0 MiB reclaimed \(0 MiB since the daemon started\); images take [0-9.]+ GiB of the 1024 GiB budget$", roomy.Message);
        Assert.Equal(layersSize, roomy.Values["image_bytes"]);
        Assert.Equal(1024.0 * 1024 * 1024 * 1024, roomy.Values["budget_bytes"]);
        var images = await fx.Docker.DockerAsync("images -aq --no-trunc");
        Assert.Contains(threeHours, images, StringComparison.Ordinal);

        // Over a budget of a few bytes: the dangling image of three hours ago goes, the one of half an hour stays (under
        // the hour's floor), the tagged one stays; still over: a warning that says what is left.
        var tight = await RunAsync(1e-9);
        Assert.True(tight.State == CheckState.Warning, tight.Message);
        Assert.Matches(@"^[1-9][0-9]* image record\(s\) deleted \(dangling images older than 24 h, and made more than 1 h ago over the budget, and their layers\), ", tight.Message); // the image and its layer
        Assert.Contains("over the 0 GiB budget (Builder:Hygiene:CacheBudgetGiB) with every dangling image made more than 1 h ago removed: what is left is tagged images", tight.Message, StringComparison.Ordinal);
        Assert.Equal(0, tight.Values["build_cache_bytes"]); // the classic builder keeps no BuildKit cache
        Assert.True(tight.Values["reclaimed_bytes"] > 0, tight.Message);
        images = await fx.Docker.DockerAsync("images -aq --no-trunc");
        Assert.DoesNotContain(threeHours, images, StringComparison.Ordinal);
        Assert.Contains(halfAnHour, images, StringComparison.Ordinal);
        Assert.Contains(current, images, StringComparison.Ordinal);
        Assert.True(tight.Values["image_bytes"] < layersSize, tight.Message);
        await fx.Docker.DockerAsync($"rmi -f {tag} {halfAnHour}");
    }

    [Fact]
    public async Task TheDisk_FreeShareOfARealFilesystem_OkWarningFailing_AndAPathThatIsNotThereIsFailing()
    {
        // A filesystem of the test's own, of a known size, filled to known shares.
        using var dir = new TempDir("builder-disk");
        var mount = await Run.ProcessAsync("mount", ["-t", "tmpfs", "-o", "size=8m", "tfa-disk", dir.Path], TimeSpan.FromSeconds(10));
        Assert.True(mount.ExitCode == 0, mount.ToString());
        try
        {
            var state = new Common.Reporting.AgentState(TimeProvider.System, NullLogger<Common.Reporting.AgentState>.Instance);
            Directory.CreateDirectory(dir["docker"]);
            async Task<CheckResult> RunAsync(string path)
            {
                var options = Microsoft.Extensions.Options.Options.Create(new DiskOptions { Path = path, MinFreePercent = 10 });
                Assert.Empty(options.Value.Validate(DiskOptions.Section));
                await new DiskCheck(options, state, TimeProvider.System, NullLogger<DiskCheck>.Instance).RunGuardedAsync(CancellationToken.None);
                return state.GetCheck(DiskCheck.Check)!;
            }

            void Fill(double share) => File.WriteAllBytes(dir["fill"], new byte[(int)(8 * 1024 * 1024 * share)]);
            var empty = await RunAsync(dir["docker"]);
            Assert.True(empty.State == CheckState.Ok, empty.Message);
            Assert.Equal($"8 MiB", $"{empty.Values["size_bytes"] / (1024 * 1024):0} MiB");
            Assert.EndsWith($"GiB (100 %) on the filesystem of {dir["docker"]}", empty.Message, StringComparison.Ordinal);

            Fill(0.85); // 15 % free: under twice 10 %
            var low = await RunAsync(dir["docker"]);
            Assert.True(low.State == CheckState.Warning, low.Message);
            Assert.Contains("(15 %)", low.Message, StringComparison.Ordinal);

            Fill(0.95); // 5 % free
            var full = await RunAsync(dir["docker"]);
            Assert.True(full.State == CheckState.Failing, full.Message);
            Assert.Contains("(5 %) on the filesystem of", full.Message, StringComparison.Ordinal);
            Assert.Contains("below Builder:Disk:MinFreePercent (10 %): builds and pushes will fail", full.Message, StringComparison.Ordinal);
            Assert.Equal(5, full.Values["free_percent"], 0);

            var absent = await RunAsync(dir["absent"]); // measures nothing: failing, so the alert fires
            Assert.Equal(CheckState.Failing, absent.State);
            Assert.Equal($"{dir["absent"]} (Builder:Disk:Path) is not there: set it to Docker's data-root", absent.Message);
        }
        finally
        {
            await Run.ProcessAsync("umount", [dir.Path], TimeSpan.FromSeconds(10));
        }
    }

    [Fact]
    public async Task ABuildInProgress_HoldsOffThePrune_ItsCacheIsUntaggedImages()
    {
        // A build whose RUN step waits for the test's word: while it runs, the hygiene prunes nothing.
        using var dir = new TempDir("hygiene-build");
        var context = new MemoryStream();
        using (var tar = new System.Formats.Tar.TarWriter(context, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
        {
            tar.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "Dockerfile")
            {
                DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo started-" + _name + "; /bin/busybox sleep 4\"]\n")),
            });
            tar.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "busybox") { DataStream = File.OpenRead("/bin/busybox"), Mode = (UnixFileMode)Convert.ToInt32("755", 8) });
        }

        context.Position = 0;
        using var docker = new BuilderDocker(fx.Docker.Endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2));
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var build = docker.BuildAsync(context, $"{_name}:testing", "Dockerfile", new Dictionary<string, string>(), noCache: true, pull: false,
            line => { if (line.Contains("started-" + _name, StringComparison.Ordinal)) { started.TrySetResult(); } }, CancellationToken.None);
        await started.Task.WaitAsync(TimeSpan.FromMinutes(1)); // the RUN step is running: a positive sign the build is under way

        var state = new Common.Reporting.AgentState(TimeProvider.System, NullLogger<Common.Reporting.AgentState>.Instance);
        var options = Microsoft.Extensions.Options.Options.Create(new HygieneOptions { DanglingAfter = TimeSpan.Zero, CacheBudgetGiB = 1e-9 });
        await new HygieneCheck(docker, options, state, TimeProvider.System, NullLogger<HygieneCheck>.Instance).RunGuardedAsync(CancellationToken.None);
        var during = state.GetCheck(HygieneCheck.Check)!;
        Assert.False(build.IsCompleted, "the build ended before the hygiene ran: the test proves nothing");
        Assert.StartsWith("not pruned this time: a build, a verify or an inventory read is using untagged images", during.Message, StringComparison.Ordinal);
        Assert.StartsWith("sha256:", await build, StringComparison.Ordinal);

        // Once it ended, the prune runs again.
        await new HygieneCheck(docker, options, state, TimeProvider.System, NullLogger<HygieneCheck>.Instance).RunGuardedAsync(CancellationToken.None);
        Assert.Matches(@"^[0-9]+ image record\(s\) deleted ", state.GetCheck(HygieneCheck.Check)!.Message);
        await fx.Docker.DockerAsync($"rmi -f {_name}:testing");
    }
}
