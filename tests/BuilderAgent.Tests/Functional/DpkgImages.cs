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
        using var context = new TempDir("dpkg-image");
        await WriteRootAsync(context["root"], extraStanzas);
        await File.WriteAllTextAsync(context["Dockerfile"], "FROM scratch\nCOPY root/ /\nCMD [\"/usr/bin/dpkg-query\", \"-W\"]\n");
        await docker.DockerAsync($"build -q -t {tag} {context.Path}", TimeSpan.FromMinutes(3));
    }

    /// <summary>The image's files under <paramref name="root"/>: dpkg-query, its libraries, and the status file (the host's plus <paramref name="extraStanzas"/>).</summary>
    public static async Task WriteRootAsync(string root, string extraStanzas = "")
    {
        foreach (var f in Files.Append("/var/lib/dpkg/status"))
        {
            if (!File.Exists(f))
            {
                throw Peer.Missing(f, "a Debian 12 host with dpkg (amd64)");
            }
        }

        foreach (var f in Files)
        {
            var target = root + f;
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.GetFullPath(f), target); // follows the symbolic links: the files themselves
            File.SetUnixFileMode(target, (UnixFileMode)0b111_101_101);
        }

        Directory.CreateDirectory(root + "/var/lib/dpkg/info");
        Directory.CreateDirectory(root + "/var/lib/dpkg/updates");
        await File.WriteAllTextAsync(root + "/var/lib/dpkg/info/.keep", string.Empty); // an empty directory is no file for COPY's input hash
        await File.WriteAllTextAsync(root + "/var/lib/dpkg/updates/.keep", string.Empty);
        var status = await File.ReadAllTextAsync("/var/lib/dpkg/status");
        await File.WriteAllTextAsync(root + "/var/lib/dpkg/status", status.TrimEnd('\n') + "\n\n" + extraStanzas);
    }

    /// <summary>A stanza of a package planted in one image only.</summary>
    public const string Planted = "Package: toolforge-planted\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0-1\nDescription: planted by the test\n";

    /// <summary>What `dpkg-query -W` prints inside <paramref name="image"/>: "name version arch" lines, sorted.</summary>
    public static async Task<List<string>> DpkgQueryAsync(PrivateDockerd docker, string image)
    {
        var output = await docker.DockerAsync($"run --rm --network none {image} /usr/bin/dpkg-query -W -f '${{Package}} ${{Version}} ${{Architecture}}\\n'");
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)];
    }
}
