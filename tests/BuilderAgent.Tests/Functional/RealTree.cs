using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// Toolforge's real image tree made buildable on this machine. The real images need Debian mirrors to build; here
/// their external bases (docker-registry.wikimedia.org/...) are a busybox image with apt-get, useradd and the like as
/// no-op stand-ins, so every Dockerfile of the tree builds as written. The files the reference copy lacks
/// (shared/python/..., install-packages) are committed as placeholders; and every image of the tree is first tagged
/// as that stand-in, so a leaf finds its parent without the parent being built.
/// </summary>
internal static class RealTree
{
    private static readonly SemaphoreSlim StandInOnce = new(1, 1);
    private static bool _standInBuilt;

    /// <summary>The git set-up holding the real tree (with placeholders), the stand-in bases, every image tagged as the stand-in.</summary>
    public static async Task<GitRepos> SetUpAsync(DockerFixture fx, NamingOptions naming)
    {
        var repos = await GitRepos.CreateAsync(Fixtures.ReferenceRepository, AddWhatTheReferenceCopyLacks);
        await StandInBasesAsync(fx);
        var graph = ImageRepository.Open(repos.Checkout).Graph(naming);
        await Run.ShAsync($"for n in {string.Join(' ', graph.Images.Select(i => naming.FullName(i.Path)))}; do docker -H {fx.Docker.Endpoint} tag tfa-standin:base \"$n\" || exit 1; done", TimeSpan.FromMinutes(2));
        return repos;
    }

    /// <summary>Placeholders for the COPY sources missing from the reference copy (it holds the templates, not every file).</summary>
    private static void AddWhatTheReferenceCopyLacks(string tree)
    {
        var graph = ImageRepository.Open(tree).Graph(new NamingOptions());
        foreach (var image in graph.Images)
        {
            foreach (var source in ChangeSelector.CopySources(image))
            {
                var path = Path.Combine(tree, source.Text);
                if (!File.Exists(path) && !Directory.Exists(path) && source.Text.IndexOfAny(['*', '?', '[']) < 0)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    File.WriteAllText(path, "#!/bin/sh\n# placeholder: this file is not in the reference copy of toollabs-images\n");
                }
            }
        }
    }

    private static async Task StandInBasesAsync(DockerFixture fx)
    {
        await StandInOnce.WaitAsync();
        try
        {
            if (_standInBuilt)
            {
                return;
            }

            using var ctx = new TempDir("standin");
            File.Copy("/bin/busybox", ctx["busybox"]);
            Directory.CreateDirectory(ctx["stubs"]);
            foreach (var tool in new[] { "apt-get", "groupadd", "useradd", "npm", "update-ca-certificates", "update-locale" })
            {
                await File.WriteAllTextAsync(ctx[$"stubs/{tool}"], "#!/bin/sh\nexit 0\n");
            }

            Directory.CreateDirectory(ctx["etc"]);
            await File.WriteAllTextAsync(ctx["etc/passwd"], "root:x:0:0:root:/root:/bin/sh\ntfb:x:61312:61312::/home/tfb:/bin/sh\n");
            await File.WriteAllTextAsync(ctx["etc/group"], "root:x:0:\ntfb:x:61312:\n");
            await File.WriteAllTextAsync(ctx["etc/ca-certificates.conf"], "mozilla/DST_Root_CA_X3.crt\n");
            await File.WriteAllTextAsync(ctx["Dockerfile"], """
                FROM scratch
                COPY busybox /bin/busybox
                RUN ["/bin/busybox", "--install", "-s", "/bin"]
                COPY etc/ /etc/
                COPY stubs/ /usr/local/bin/
                RUN chmod 0755 /usr/local/bin/* && mkdir -p /usr/bin /var/lib/apt/lists
                """);
            await fx.Docker.DockerAsync($"build -q -t tfa-standin:base {ctx.Path}");
            foreach (var external in new[] { "bookworm", "bullseye", "trixie" })
            {
                await fx.Docker.DockerAsync($"tag tfa-standin:base docker-registry.wikimedia.org/{external}:latest");
            }

            _standInBuilt = true;
        }
        finally
        {
            StandInOnce.Release();
        }
    }

}
