using System.Diagnostics;
using System.Globalization;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

// Builder benchmark: on the fixture tree (8 images, 3 levels), against a private dockerd (vfs):
//  - full rebuilds use --no-cache, as rebuild_all.sh does;
//  - sequential build (--jobs 1, as build.py builds): per-image times, their sum, and the critical path;
//  - full rebuild with --jobs 2: wall time, against the critical path and against max(critical path, sum / 2);
//  - no-op rebuild (nothing changed) of the fixture tree and of a generated 50-image tree, as whole processes.
// First, without Docker: git change detection and selection on the real 52-image tree (`-- selection` runs only that),
// then promotion of 50 images on a loopback docker-registry (`-- promote` runs only selection and that).
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var selectionMet = await GitSelectionBench.RunAsync();
if (args.Contains("selection"))
{
    return selectionMet ? 0 : 1;
}

// Promotion of 50 images on a loopback docker-registry (no Docker needed): `-- promote` runs only that.
var promotionMet = await Toolforge.Agents.BuilderAgent.Bench.PromotionBench.RunAsync(CopyFixture, Generate50);
if (args.Contains("promote"))
{
    return promotionMet ? 0 : 1;
}

await using var docker = await PrivateDockerd.StartAsync();
using var repo = CopyFixture();
var naming = new NamingOptions("bench.local:5000", "bench", "testing");
using var engine = new BuilderDocker(docker.Endpoint, TimeSpan.FromSeconds(30), TimeSpan.FromHours(1));
var graph = ImageRepository.Open(repo.Path).Graph(naming);
var all = graph.Select(graph.Roots, single: false);

async Task<(TimeSpan Wall, IReadOnlyList<ImageReport> Reports)> BuildAll(int jobs)
{
    var runner = new BuildRunner(engine, graph, new BuildSettings(naming, NoCache: true, Force: true, Jobs: jobs), new NullLog());
    var sw = Stopwatch.StartNew();
    var reports = await runner.RunAsync(await runner.PlanAsync(all, default), default);
    sw.Stop();
    if (reports.Any(r => !r.Ok))
    {
        throw new InvalidOperationException("a build failed: " + string.Join("; ", reports.Where(r => !r.Ok).Select(r => r.Error)));
    }

    return (sw.Elapsed, reports);
}

await BuildAll(2); // warm: base layers and busybox in the engine
var sequential = new List<(TimeSpan Wall, IReadOnlyList<ImageReport> Reports)>();
var parallel = new List<TimeSpan>();
for (var i = 0; i < 3; i++)
{
    sequential.Add(await BuildAll(1));
    parallel.Add((await BuildAll(2)).Wall);
}

var seq = sequential.OrderBy(s => s.Wall).ElementAt(1);
var durations = seq.Reports.ToDictionary(r => r.Path, r => r.Duration.TotalSeconds);
double Chain(string p) => durations[p] + (graph[p].ParentPath is { } parent ? Chain(parent) : 0);
var critical = all.Max(Chain);
var sum = durations.Values.Sum();
var par = parallel.Order().ElementAt(1).TotalSeconds;
Console.WriteLine($"fixture tree: {all.Count} images; per image (s): {string.Join(", ", durations.Select(d => $"{d.Key}={d.Value:0.00}"))}");
Console.WriteLine($"sequential (--jobs 1, as build.py): wall {seq.Wall.TotalSeconds:0.00}s, sum of image builds {sum:0.00}s");
Console.WriteLine($"critical path: {critical:0.00}s; lower bound with 2 jobs max(critical, sum/2) = {Math.Max(critical, sum / 2):0.00}s");
Console.WriteLine($"full rebuild --jobs 2: wall {par:0.00}s (median of 3) = {par / critical:0.00} x critical path, {par / Math.Max(critical, sum / 2):0.00} x lower bound, {seq.Wall.TotalSeconds / par:0.00} x faster than sequential");

// No-op rebuilds as an admin runs them: the whole process, nothing changed.
async Task<double> NoOp(string root, string image)
{
    var times = new List<double>();
    for (var i = 0; i < 3; i++)
    {
        var sw = Stopwatch.StartNew();
        var r = await Run.DotnetToolAsync("toolforge-builder-agent", ["build", image, "--repo", root, "--docker-registry", naming.Registry, "--image-prefix", naming.Prefix, "--docker-host", docker.Endpoint], TimeSpan.FromMinutes(10));
        sw.Stop();
        if (r.ExitCode != 0 || !r.Stdout.Contains("nothing to build", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("no-op rebuild built something: " + r);
        }

        times.Add(sw.Elapsed.TotalSeconds);
    }

    return times.Order().ElementAt(1);
}

Console.WriteLine($"no-op rebuild of base-a's lineage (5 images, whole process, median of 3): {await NoOp(repo.Path, "base-a"):0.00}s");

using var big = CopyFixture();
Generate50(big.Path);
var bigGraph = ImageRepository.Open(big.Path).Graph(naming);
var bigRunner = new BuildRunner(engine, bigGraph, new BuildSettings(naming, Jobs: 2), new NullLog());
var bigAll = bigGraph.Select(bigGraph.Roots, single: false);
await bigRunner.RunAsync(await bigRunner.PlanAsync(bigAll, default), default);
Console.WriteLine($"no-op rebuild of a 50-image lineage (whole process, median of 3): {await NoOp(big.Path, "gen"):0.00}s");
return selectionMet && promotionMet ? 0 : 1;

static TempDir CopyFixture()
{
    var src = Path.Combine(AppContext.BaseDirectory, "Fixtures", "images");
    var dir = new TempDir("bench-images");
    foreach (var f in Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories))
    {
        var target = Path.Combine(dir.Path, Path.GetRelativePath(src, f));
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Copy(f, target);
    }

    File.Copy("/bin/busybox", dir["shared/busybox"]);
    File.SetUnixFileMode(dir["shared/busybox"], (UnixFileMode)0b111_101_101);
    return dir;
}

// A root "gen" with 7 children, each with 6 grandchildren: 1 + 7 + 42 = 50 images.
static void Generate50(string root)
{
    Directory.CreateDirectory(Path.Combine(root, "gen"));
    File.WriteAllText(Path.Combine(root, "gen", "Dockerfile.template"), "FROM scratch\nCOPY shared/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n");
    for (var c = 0; c < 7; c++)
    {
        var child = Path.Combine(root, "gen", $"c{c}");
        Directory.CreateDirectory(child);
        File.WriteAllText(Path.Combine(child, "Dockerfile.template"), $"FROM {{{{registry}}}}/{{{{image_prefix}}}}-gen:{{{{tag}}}}\nRUN echo c{c} > /c\n");
        for (var g = 0; g < 6; g++)
        {
            Directory.CreateDirectory(Path.Combine(child, $"g{g}"));
            File.WriteAllText(Path.Combine(child, $"g{g}", "Dockerfile.template"), $"FROM {{{{registry}}}}/{{{{image_prefix}}}}-gen-c{c}:{{{{tag}}}}\nLABEL g=\"{g}\"\n");
        }
    }
}

internal sealed class NullLog : IBuildLog
{
    public void Line(string image, string text)
    {
    }
}
