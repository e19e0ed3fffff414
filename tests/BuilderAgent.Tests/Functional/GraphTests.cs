using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

public sealed partial class GraphTests
{
    [Fact]
    public async Task PlanCommand_OnTheReferenceRepository_PrintsTheLineageWithFullNames()
    {
        using var home = new TempDir();
        var r = await Run.DotnetToolAsync("toolforge-builder-agent", ["plan", "python311-sssd/web", "--repo", Fixtures.ReferenceRepository, "-o", "json", "--docker-host", "unix://" + home["no-docker.sock"]]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var images = System.Text.Json.Nodes.JsonNode.Parse(r.Stdout)!["images"]!.AsArray();
        Assert.Equal(["bookworm-sssd", "python311-sssd/base", "python311-sssd/web"], images.Select(i => (string)i!["image"]!));
        Assert.Equal("docker-registry.svc.toolforge.org/toolforge-python311-sssd-web:testing", (string?)images[2]!["name"]);
        Assert.Equal("python311-sssd/base", (string?)images[2]!["parent"]);
    }

    [Fact]
    public async Task Cycle_IsAOneLineErrorNamingTheFile()
    {
        var r = await CliOnBrokenRepo(repo => File.WriteAllText(repo["a/Dockerfile.template"], "FROM {{registry}}/{{image_prefix}}-a-b:{{tag}}\n"), "graph");
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains("Dockerfile.template: FROM makes a cycle: a -> a/b -> a", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingParent_IsAOneLineErrorNamingTheFile()
    {
        var r = await CliOnBrokenRepo(repo => File.WriteAllText(repo["a/b/Dockerfile.template"], "FROM {{registry}}/{{image_prefix}}-nothing:{{tag}}\n"), "plan", "a");
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.Contains("/a/b/Dockerfile.template: FROM docker-registry.svc.toolforge.org/toolforge-nothing:testing names a parent image that no folder makes", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UndefinedVariable_IsAOneLineErrorNamingFileAndLine()
    {
        var r = await CliOnBrokenRepo(repo => File.WriteAllText(repo["a/b/Dockerfile.template"], "FROM {{registry}}/{{image_prefix}}-a:{{tag}}\nRUN echo {{ version }}\n"), "render", "a/b");
        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.EndsWith("/a/b/Dockerfile.template:2: undefined variable 'version'", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoFoldersWithOneName_IsAnError()
    {
        var r = await CliOnBrokenRepo(repo =>
        {
            Directory.CreateDirectory(repo["a-b"]);
            File.WriteAllText(repo["a-b/Dockerfile"], "FROM scratch\n");
        }, "graph");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("folders a-b and a/b both make the image docker-registry.svc.toolforge.org/toolforge-a-b", r.Stderr, StringComparison.Ordinal);
    }
}
