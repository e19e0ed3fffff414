using System.Diagnostics;
using System.IO.Compression;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Promotion;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Bench;

/// <summary>
/// Promotion of 50 images on the loopback registry (Debian's docker-registry), as an admin runs it: the whole process
/// `promote --all-verified` (JIT, as the other whole-process figures here), each round on 50 fresh testing manifests
/// (so every image is really written, not "already latest"). The peer's figure from the same run: skopeo 1.9 copying
/// the same 50 testing tags to latest with --preserve-digests, one process per image (how an admin scripts it).
/// Bound (issue 27): ≤ 10 s.
/// </summary>
internal static class PromotionBench
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    public static async Task<bool> RunAsync(Func<TempDir> copyFixture, Action<string> generate50)
    {
        await using var registry = await PrivateRegistry.StartAsync();
        using var tree = copyFixture();
        generate50(tree.Path);
        var naming = new NamingOptions(registry.Address, "bench", TagPolicy.Testing);
        var images = ImageRepository.Open(tree.Path).Graph(naming).Images.Select(i => i.Path).Where(p => p == "gen" || p.StartsWith("gen/", StringComparison.Ordinal)).ToList();
        var store = new VerifiedStore(tree["state/verified.json"]);
        var config = new JsonObject
        {
            ["Log"] = new JsonObject { ["Console"] = "plain" },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
            ["Builder"] = new JsonObject
            {
                ["Repository"] = tree.Path,
                ["Registry"] = registry.Address,
                ["ImagePrefix"] = naming.Prefix,
                ["DockerEndpoint"] = "unix:///run/bench-no-docker.sock",
                ["DockerConfig"] = tree["no-docker-config.json"],
                ["Promotion"] = new JsonObject { ["StateFile"] = store.Path },
            },
        };
        await File.WriteAllTextAsync(tree["builder.json"], config.ToJsonString());
        using var http = new HttpClient { BaseAddress = new Uri($"http://{registry.Address}/v2/"), Timeout = TimeSpan.FromSeconds(30) };

        var ours = new List<double>();
        for (var round = 0; round < 3; round++)
        {
            foreach (var path in images)
            {
                var digest = await SeedAsync(http, naming.Repository(path)[(registry.Address.Length + 1)..], $"round {round} {path}");
                store.Record(naming.Repository(path), new Verdict(digest, true, DateTimeOffset.UtcNow, "bench"));
            }

            var sw = Stopwatch.StartNew();
            var r = await Run.DotnetToolAsync("toolforge-builder-agent", ["promote", "--all-verified", "--config", tree["builder.json"]], TimeSpan.FromMinutes(5));
            sw.Stop();
            if (r.ExitCode != 0 || !r.Stdout.Contains($"{images.Count} of {images.Count} image(s) promoted", StringComparison.Ordinal)
                || r.Stdout.Contains("already", StringComparison.Ordinal))
            {
                throw new InvalidOperationException("promote did not promote all 50: " + r);
            }

            ours.Add(sw.Elapsed.TotalSeconds);
        }

        foreach (var path in images)
        {
            await SeedAsync(http, naming.Repository(path)[(registry.Address.Length + 1)..], $"skopeo {path}");
        }

        var skopeo = Peer.Require("skopeo", "skopeo");
        var peer = Stopwatch.StartNew();
        foreach (var path in images)
        {
            var repo = naming.Repository(path);
            var c = await Run.ProcessAsync(skopeo, ["copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", $"docker://{repo}:testing", $"docker://{repo}:latest"], TimeSpan.FromMinutes(1));
            if (c.ExitCode != 0)
            {
                throw new InvalidOperationException("skopeo copy failed: " + c);
            }
        }

        peer.Stop();
        var median = ours.Order().ElementAt(1);
        var met = median <= Bound.TotalSeconds;
        Console.WriteLine($"promotion of {images.Count} images on the loopback registry (whole process `promote --all-verified`, median of 3): {median:0.00}s "
            + $"(runs {string.Join(", ", ours.Select(o => o.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)))}; bound {Bound.TotalSeconds:0} s: {(met ? "met" : "NOT MET")}); "
            + $"skopeo copy --preserve-digests, one process per image, same registry: {peer.Elapsed.TotalSeconds:0.00}s");
        return met;
    }

    // A small image under testing: one layer (an empty tar, gzipped) and a config naming `what`; returns the manifest digest.
    private static async Task<string> SeedAsync(HttpClient http, string name, string what)
    {
        var tar = new byte[1024]; // an empty tar archive: its end-of-archive blocks
        using var gz = new MemoryStream();
        await using (var z = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            await z.WriteAsync(tar);
        }

        var layer = gz.ToArray();
        var configJson = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject { ["Labels"] = new JsonObject { ["bench"] = what } },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(Sha(tar)) },
        }.ToJsonString());
        await UploadAsync(http, name, layer);
        await UploadAsync(http, name, configJson);
        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json",
            ["config"] = new JsonObject { ["mediaType"] = "application/vnd.docker.container.image.v1+json", ["size"] = configJson.Length, ["digest"] = Sha(configJson) },
            ["layers"] = new JsonArray(new JsonObject { ["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip", ["size"] = layer.Length, ["digest"] = Sha(layer) }),
        }.ToJsonString());
        using var content = new ByteArrayContent(manifest);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/vnd.docker.distribution.manifest.v2+json");
        using var put = await http.PutAsync($"{name}/manifests/testing", content);
        put.EnsureSuccessStatusCode();
        return Sha(manifest);
    }

    private static async Task UploadAsync(HttpClient http, string name, byte[] blob)
    {
        using var start = await http.PostAsync($"{name}/blobs/uploads/", null);
        start.EnsureSuccessStatusCode();
        var location = start.Headers.Location!;
        var target = new Uri(http.BaseAddress!, location);
        var sep = target.Query.Length > 0 ? "&" : "?";
        using var body = new ByteArrayContent(blob);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var done = await http.PutAsync(new Uri(target + $"{sep}digest={Uri.EscapeDataString(Sha(blob))}"), body);
        done.EnsureSuccessStatusCode();
    }

    private static string Sha(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));
}
