using System.Text.Json;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Inventory;
using Toolforge.Agents.BuilderAgent.Promotion;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// The package inventory of a pushed digest against a real dockerd and Debian's docker-registry: the image's dpkg database
/// read through the Engine API, compared with Debian's dpkg-query run inside the same image.
/// </summary>
[Collection("docker")]
public sealed class InventoryTests(DockerFixture fx)
{
    private readonly string _name = "inv" + Guid.NewGuid().ToString("N")[..8];

    private BuilderDocker Docker() => new(fx.Docker.Endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2));

    [Fact]
    public async Task Inventory_OfAPushedDebianImage_ListsExactlyWhatDpkgQueryListsInside_AndIsValidCycloneDx()
    {
        var repository = $"{fx.Registry.Address}/{_name}";
        await DpkgImages.BuildAsync(fx.Docker, $"{repository}:testing");
        using var docker = Docker();
        var digest = await docker.PushAsync(repository, "testing", _ => { }, CancellationToken.None);
        Assert.Matches("^sha256:[0-9a-f]{64}$", digest);

        var inventory = await new PackageInventory(docker, TimeProvider.System).TakeAsync(repository, digest, CancellationToken.None);

        var inside = await DpkgImages.DpkgQueryAsync(fx.Docker, $"{repository}@{digest}");
        Assert.True(inside.Count > 100, $"dpkg-query listed {inside.Count} packages");
        Assert.Equal(inside.Count, inventory.Packages.Count);
        Assert.Equal(inside, inventory.Packages.Select(p => $"{p.Name} {p.Version} {p.Architecture}").Order(StringComparer.Ordinal));

        Assert.Empty(CycloneDxSchemaRules.Violations(inventory.Document));
        using var doc = JsonDocument.Parse(inventory.Document);
        Assert.Equal(inside.Count, doc.RootElement.GetProperty("components").GetArrayLength());
        Assert.Equal(digest, doc.RootElement.GetProperty("metadata").GetProperty("component").GetProperty("version").GetString());
        Assert.Equal(repository, doc.RootElement.GetProperty("metadata").GetProperty("component").GetProperty("name").GetString());

        // Nothing ran and nothing is left: the container that was read from is gone.
        Assert.Empty((await fx.Docker.DockerAsync("ps -aq --filter label=org.toolforge.builder.inventory")).Trim());
    }

    [Fact]
    public async Task LanguagePackages_OfTheLockFilesTheImageNames_AreInTheInventory_AndTheDocumentStaysValid()
    {
        // An image FROM scratch whose label names its application's lock files (npm v3 and Bundler's).
        using var context = new TempDir("inv-lock");
        Directory.CreateDirectory(context["app"]);
        await File.WriteAllTextAsync(context["app/package-lock.json"], """
            {"name":"app","lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/@types/node":{"version":"20.11.5"},"node_modules/a/node_modules/left-pad":{"version":"1.1.0"}}}
            """);
        await File.WriteAllTextAsync(context["app/Gemfile.lock"], "GEM\n  remote: https://rubygems.org/\n  specs:\n    rack (3.0.8)\n\nPLATFORMS\n  ruby\n");
        await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY app /srv/app\nLABEL org.toolforge.inventory.lock-files=\"/srv/app/package-lock.json,/srv/app/Gemfile.lock\"\n");
        var repository = $"{fx.Registry.Address}/{_name}";
        await fx.Docker.DockerAsync($"build -q -t {repository}:testing {context.Path}");
        using var docker = Docker();
        var digest = await docker.PushAsync(repository, "testing", _ => { }, CancellationToken.None);

        var inventory = await new PackageInventory(docker, TimeProvider.System).TakeAsync(repository, digest, CancellationToken.None);
        Assert.Empty(inventory.Packages); // no dpkg database
        Assert.Equal(["gem:rack 3.0.8", "npm:@types/node 20.11.5", "npm:left-pad 1.1.0", "npm:left-pad 1.3.0"],
            inventory.Language.Select(p => $"{p.Qualified} {p.Version}").Order(StringComparer.Ordinal));
        Assert.Empty(CycloneDxSchemaRules.Violations(inventory.Document));
        using var doc = JsonDocument.Parse(inventory.Document);
        var purls = doc.RootElement.GetProperty("components").EnumerateArray().Select(c => c.GetProperty("purl").GetString()).ToList();
        Assert.Equal(["pkg:gem/rack@3.0.8", "pkg:npm/%40types/node@20.11.5", "pkg:npm/left-pad@1.1.0", "pkg:npm/left-pad@1.3.0"], purls.Order(StringComparer.Ordinal));

        // A label naming a lock file the image does not have: refused, not an empty list.
        await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY app /srv/app\nLABEL org.toolforge.inventory.lock-files=\"/srv/app/composer.lock\"\n");
        await fx.Docker.DockerAsync($"build -q -t {repository}:missing {context.Path}");
        var missing = await Assert.ThrowsAsync<InventoryException>(() => PackageInventory.ReadLanguagePackagesAsync(docker, $"{repository}:missing", 20_000, CancellationToken.None));
        Assert.Equal("the image's label org.toolforge.inventory.lock-files names /srv/app/composer.lock, which is not a file in it", missing.Message);

        // Through the inventory, that fails the language part only: the document says so, and the rest stands.
        var missingDigest = await docker.PushAsync(repository, "missing", _ => { }, CancellationToken.None);
        var partial = await new PackageInventory(docker, TimeProvider.System).TakeAsync(repository, missingDigest, CancellationToken.None);
        Assert.Equal(missing.Message, partial.LanguageProblem);
        Assert.Empty(partial.Language);
        Assert.Empty(CycloneDxSchemaRules.Violations(partial.Document));
        Assert.Contains("\"toolforge:language-packages-missing\"", System.Text.Encoding.UTF8.GetString(partial.Document), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_TheDocumentIsKeptBesideTheImage_FoundFromTheImageDigestThroughTheReferrersTag()
    {
        // The registry of the engine's namespace, reached from this process at the same address.
        await using var bridge = EngineApiCounter.BridgeFromHost(fx.Docker.NetworkNamespace, fx.Registry.Port);
        var repository = $"{fx.Registry.Address}/{_name}";
        await DpkgImages.BuildAsync(fx.Docker, $"{repository}:testing");
        using var docker = Docker();
        var digest = await docker.PushAsync(repository, "testing", _ => { }, CancellationToken.None);
        using var inventory = new PackageInventory(docker, TimeProvider.System, new RegistryClient(fx.Registry.Address, null, TimeSpan.FromSeconds(30)));
        var taken = await inventory.TakeAsync(repository, digest, CancellationToken.None);

        var artifact = await inventory.PublishAsync(taken, CancellationToken.None);
        // Published again (a rebuild of the same digest): the index still lists each artifact once.
        var again = await inventory.PublishAsync(await inventory.TakeAsync(repository, digest, CancellationToken.None), CancellationToken.None);

        // From the image digest alone: the tag sha256-<hex> (read by skopeo, an independent client) lists the artifacts.
        var tag = "sha256-" + digest["sha256:".Length..];
        var skopeo = Peer.Require("skopeo", "skopeo");
        var raw = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, skopeo, "inspect", "--tls-verify=false", "--raw", $"docker://{repository}:{tag}"], TimeSpan.FromSeconds(60));
        Assert.True(raw.ExitCode == 0, raw.ToString());
        var index = JsonDocument.Parse(raw.Stdout).RootElement;
        Assert.Equal("application/vnd.oci.image.index.v1+json", index.GetProperty("mediaType").GetString());
        var listed = index.GetProperty("manifests").EnumerateArray().ToList();
        Assert.Single(listed); // the second publish of the same digest replaced the first (review B7: the index does not grow)
        Assert.All(listed, m => Assert.Equal("application/vnd.cyclonedx+json", m.GetProperty("artifactType").GetString()));
        Assert.Contains(listed, m => m.GetProperty("digest").GetString() == again);

        // The artifact names the image as its subject, and its layer (read through the registry's HTTP API) is the document.
        var read = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, skopeo, "inspect", "--tls-verify=false", "--raw", $"docker://{repository}@{again}"], TimeSpan.FromSeconds(60));
        Assert.True(read.ExitCode == 0, read.ToString());
        var manifest = JsonDocument.Parse(read.Stdout).RootElement;
        Assert.Equal(digest, manifest.GetProperty("subject").GetProperty("digest").GetString());
        Assert.Equal("application/vnd.cyclonedx+json", manifest.GetProperty("artifactType").GetString());
        var layer = manifest.GetProperty("layers")[0];
        var blob = await fx.Registry.GetAsync($"/v2/{_name}/blobs/{layer.GetProperty("digest").GetString()}");
        using var bom = JsonDocument.Parse(blob);
        Assert.Equal(taken.Packages.Count, bom.RootElement.GetProperty("components").GetArrayLength());
        Assert.Equal(digest, bom.RootElement.GetProperty("metadata").GetProperty("component").GetProperty("version").GetString());

        // testing still names the image, unchanged.
        var testing = await Run.ProcessAsync("nsenter", ["--net=/run/netns/" + fx.Docker.NetworkNamespace, skopeo, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", $"docker://{repository}:testing"], TimeSpan.FromSeconds(60));
        Assert.Equal(digest, testing.Stdout.Trim());
    }

    [Fact]
    public async Task Inventory_OfAnImageWhoseDpkgDatabaseIsHostile_IsRefusedInOneEscapedLine_AndLeavesNoContainer()
    {
        var repository = $"{fx.Registry.Address}/{_name}";
        using var context = new TempDir("hostile-image");
        Directory.CreateDirectory(context["root/var/lib/dpkg"]);
        await File.WriteAllTextAsync(context["root/var/lib/dpkg/status"],
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36\u001b]0;owned\u0007\n");
        await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY root/ /\n");
        await fx.Docker.DockerAsync($"build -q -t {repository}:testing {context.Path}");
        using var docker = Docker();
        var digest = await docker.PushAsync(repository, "testing", _ => { }, CancellationToken.None);

        var ex = await Assert.ThrowsAsync<InventoryException>(() => new PackageInventory(docker, TimeProvider.System).TakeAsync(repository, digest, CancellationToken.None));

        Assert.Equal("/var/lib/dpkg/status: the stanza at line 1 (libc6) has version \"2.36\\x1b]0;owned\\x07\", which is not a Debian version", ex.Message);
        Assert.Empty((await fx.Docker.DockerAsync("ps -aq --filter label=org.toolforge.builder.inventory")).Trim());
    }

    [Fact]
    public async Task Inventory_OfAnImageWithoutDpkg_IsNoPackages()
    {
        var repository = $"{fx.Registry.Address}/{_name}";
        using var context = new TempDir("busybox-image");
        File.Copy("/bin/busybox", context["busybox"]);
        await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY busybox /bin/busybox\n");
        await fx.Docker.DockerAsync($"build -q -t {repository}:testing {context.Path}");
        using var docker = Docker();
        var digest = await docker.PushAsync(repository, "testing", _ => { }, CancellationToken.None);

        var inventory = await new PackageInventory(docker, TimeProvider.System).TakeAsync(repository, digest, CancellationToken.None);

        Assert.Empty(inventory.Packages);
        Assert.Empty(CycloneDxSchemaRules.Violations(inventory.Document));
        Assert.Empty((await fx.Docker.DockerAsync("ps -aq --filter label=org.toolforge.builder.inventory")).Trim());
    }

    [Fact]
    public async Task Inventory_OfAnImageWhoseStatusIsALink_IsRefused_NeverTakenForNoPackages()
    {
        // Review B5: a symlinked /var/lib/dpkg/status came back as a link entry only and was read as "no packages".
        var repository = $"{fx.Registry.Address}/{_name}";
        using var context = new TempDir("linked-status");
        Directory.CreateDirectory(context["root/var/lib/dpkg"]);
        Directory.CreateDirectory(context["root/usr/share/dpkg-db"]);
        await File.WriteAllTextAsync(context["root/usr/share/dpkg-db/status"], "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u10\n");
        File.CreateSymbolicLink(context["root/var/lib/dpkg/status"], "/usr/share/dpkg-db/status");
        await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY root/ /\n");
        await fx.Docker.DockerAsync($"build -q -t {repository}:testing {context.Path}");
        using var docker = Docker();
        var digest = await docker.PushAsync(repository, "testing", _ => { }, CancellationToken.None);

        var ex = await Assert.ThrowsAsync<InventoryException>(() => new PackageInventory(docker, TimeProvider.System).TakeAsync(repository, digest, CancellationToken.None));

        Assert.Contains("/var/lib/dpkg/status is a link in the image (/usr/share/dpkg-db/status): not followed, not read", ex.Message, StringComparison.Ordinal);
        Assert.Empty((await fx.Docker.DockerAsync("ps -aq --filter label=org.toolforge.builder.inventory")).Trim());
    }

    [Fact]
    public async Task AReadContainerLeftBehind_IsSweptOnceOlderThanTheBound_AndAFreshOneIsLeftAlone()
    {
        // Review B6: a container made to read an image's files that was not removed (a creation that timed out after the
        // engine made it) is removed by the builder.docker check's sweep; one being read right now is not touched.
        var repository = $"{fx.Registry.Address}/{_name}";
        using var context = new TempDir("sweep-image");
        File.Copy("/bin/busybox", context["busybox"]);
        await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY busybox /bin/busybox\n");
        await fx.Docker.DockerAsync($"build -q -t {repository}:testing {context.Path}");
        var left = (await fx.Docker.DockerAsync($"create --network none --label {BuilderDocker.InventoryLabel}=1 {repository}:testing /bin/busybox true")).Trim();
        var other = (await fx.Docker.DockerAsync($"create --network none {repository}:testing /bin/busybox true")).Trim(); // not ours
        using var docker = Docker();

        Assert.Empty(await docker.SweepReadContainersAsync(TimeSpan.FromMinutes(10), DateTimeOffset.UtcNow, CancellationToken.None)); // fresh: left alone
        var swept = await docker.SweepReadContainersAsync(TimeSpan.FromMinutes(10), DateTimeOffset.UtcNow.AddMinutes(11), CancellationToken.None);
        Assert.Equal([(left, (string?)null)], swept);
        Assert.Empty((await fx.Docker.DockerAsync($"ps -aq --filter label={BuilderDocker.InventoryLabel}")).Trim());
        Assert.StartsWith(other[..12], (await fx.Docker.DockerAsync($"ps -aq --filter id={other}")).Trim(), StringComparison.Ordinal);
        await fx.Docker.DockerAsync($"rm -f {other}");
    }
}
