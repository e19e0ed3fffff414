using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

/// <summary>Where the test data is, and a writable copy of the fixture image repository with busybox in it.</summary>
internal static class Fixtures
{
    public static string Images => Path.Combine(AppContext.BaseDirectory, "Fixtures", "images");

    public static string Expected => Path.Combine(AppContext.BaseDirectory, "Fixtures", "expected");

    /// <summary>../shared/reference-data/toollabs-images: Toolforge's real image repository (52 images).</summary>
    public static string ReferenceRepository => Run.ReferenceData("toollabs-images", "the reference toollabs-images repository");

    public const string FixtureRegistry = "registry.test:5000";
    public const string FixturePrefix = "fx";

    /// <summary>A copy of the fixture repository in a temp dir, with Debian's static busybox as shared/busybox.</summary>
    public static TempDir CopyRepository()
    {
        var busybox = "/bin/busybox";
        if (!File.Exists(busybox))
        {
            throw Peer.Missing("/bin/busybox", "install Debian package busybox-static");
        }

        var dir = new TempDir("images");
        foreach (var f in Directory.EnumerateFiles(Images, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dir.Path, Path.GetRelativePath(Images, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }

        File.Copy(busybox, dir["shared/busybox"]);
        File.SetUnixFileMode(dir["shared/busybox"], (UnixFileMode)0b111_101_101);
        return dir;
    }

    public static readonly string[] FixtureImages =
    [
        "base-a", "base-a/tools", "base-a/tools/extra", "base-a/web", "base-a/web/app", "base-b", "base-b/tools", "base-b/tools/cli",
    ];

    /// <summary>Renders templates with Debian's python3-jinja2 (trim_blocks, lstrip_blocks, StrictUndefined), in one process.</summary>
    public static async Task<Dictionary<string, string>> RenderWithJinja2Async(string root, IEnumerable<string> templates, string registry, string prefix, string tag)
    {
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : throw Peer.Missing("python3", "install Debian package python3-jinja2");
        const string script = """
            import json, sys, jinja2
            root, registry, prefix, tag = sys.argv[1:5]
            env = jinja2.Environment(loader=jinja2.FileSystemLoader(root), trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
            out = {}
            for path in json.load(sys.stdin):
                out[path] = env.get_template(path + "/Dockerfile.template").render(registry=registry, image_prefix=prefix, tag=tag, image_path=path)
            json.dump(out, sys.stdout)
            """;
        var r = await Run.ProcessAsync(python, ["-c", script, root, registry, prefix, tag], TimeSpan.FromSeconds(60),
            stdin: System.Text.Json.JsonSerializer.Serialize(templates.ToList()));
        if (r.ExitCode != 0)
        {
            throw Peer.Missing("python3-jinja2", r.Stderr);
        }

        return System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(r.Stdout)!;
    }
}
