using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>
/// Images that hold a real dpkg database and Debian's own dpkg-query to read it: FROM scratch, this host's
/// /usr/bin/dpkg-query with the libraries it links (libmd, libc, the loader), and a status file — this host's own
/// /var/lib/dpkg/status (real data: 1,000 and more packages, one of them purged), optionally with more stanzas after it.
/// Nothing is pulled; one `docker build` of a 3 MiB context.
/// </summary>
internal static class DpkgImages
{
    private static readonly string[] Files =
    [
        "/usr/bin/dpkg-query", "/lib/x86_64-linux-gnu/libmd.so.0", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
    ];

    /// <summary>Builds <paramref name="tag"/> on <paramref name="docker"/>; its status file is the host's plus <paramref name="extraStanzas"/>.</summary>
    public static async Task BuildAsync(PrivateDockerd docker, string tag, string extraStanzas = "")
    {
        foreach (var f in Files.Append("/var/lib/dpkg/status"))
        {
            if (!File.Exists(f))
            {
                throw Peer.Missing(f, "a Debian 12 host with dpkg (amd64)");
            }
        }

        using var context = new TempDir("dpkg-image");
        foreach (var f in Files)
        {
            var target = context["root" + f];
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.GetFullPath(f), target); // follows the symbolic links: the files themselves
            File.SetUnixFileMode(target, (UnixFileMode)0b111_101_101);
        }

        Directory.CreateDirectory(context["root/var/lib/dpkg/info"]);
        Directory.CreateDirectory(context["root/var/lib/dpkg/updates"]);
        var status = await File.ReadAllTextAsync("/var/lib/dpkg/status");
        await File.WriteAllTextAsync(context["root/var/lib/dpkg/status"], status.TrimEnd('\n') + "\n\n" + extraStanzas);
        await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY root/ /\nCMD [\"/usr/bin/dpkg-query\", \"-W\"]\n");
        await docker.DockerAsync($"build -q -t {tag} {context.Path}", TimeSpan.FromMinutes(3));
    }

    /// <summary>What `dpkg-query -W` prints inside <paramref name="image"/>: "name version arch" lines, sorted.</summary>
    public static async Task<List<string>> DpkgQueryAsync(PrivateDockerd docker, string image)
    {
        var output = await docker.DockerAsync($"run --rm --network none {image} /usr/bin/dpkg-query -W -f '${{Package}} ${{Version}} ${{Architecture}}\\n'");
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)];
    }
}
