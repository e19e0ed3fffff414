using System.Text.Json;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Inventory;
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
}
