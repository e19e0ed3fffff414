using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// A one-layer OCI image archive made from Debian's static busybox (nothing can be pulled here): /bin/busybox with a
/// few applets, and an /etc/passwd naming the users the tests run as. One archive can carry several names.
/// </summary>
public static class OciImage
{
    public static void Write(string path, IEnumerable<string> names, IEnumerable<(string Name, int Uid)> users)
    {
        var busybox = "/bin/busybox";
        if (!System.IO.File.Exists(busybox))
        {
            throw Peer.Missing("/bin/busybox", "install Debian package busybox-static");
        }

        var passwd = new StringBuilder("root:x:0:0:root:/root:/bin/sh\n");
        foreach (var (name, uid) in users)
        {
            passwd.Append(System.Globalization.CultureInfo.InvariantCulture, $"{name}:x:{uid}:{uid}:{name}:/:/bin/sh\n");
        }

        var layer = new MemoryStream();
        using (var t = new TarWriter(layer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var d in new[] { "bin", "etc", "tmp", "proc", "sys", "dev", "root", "var" })
            {
                t.WriteEntry(new PaxTarEntry(TarEntryType.Directory, d + "/") { Mode = (UnixFileMode)Convert.ToInt32(d == "tmp" ? "1777" : "755", 8) });
            }

            t.WriteEntry(FileEntry(busybox, "bin/busybox", "755"));
            foreach (var applet in new[] { "sh", "sleep", "id", "ls", "cat", "true" })
            {
                t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox", Mode = (UnixFileMode)Convert.ToInt32("777", 8) });
            }

            t.WriteEntry(Bytes("etc/passwd", Encoding.ASCII.GetBytes(passwd.ToString())));
        }

        var layerBytes = layer.ToArray();
        var layerDigest = Digest(layerBytes);
        var config = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject { ["Env"] = new JsonArray("PATH=/bin"), ["Cmd"] = new JsonArray("/bin/sleep", "2147483647"), ["WorkingDir"] = "/" },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(layerDigest) },
        }.ToJsonString());
        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = new JsonObject { ["mediaType"] = "application/vnd.oci.image.config.v1+json", ["digest"] = Digest(config), ["size"] = config.Length },
            ["layers"] = new JsonArray(new JsonObject { ["mediaType"] = "application/vnd.oci.image.layer.v1.tar", ["digest"] = layerDigest, ["size"] = layerBytes.Length }),
        }.ToJsonString());
        var manifests = new JsonArray();
        foreach (var n in names)
        {
            manifests.Add(IndexEntry(manifest, n));
        }

        WriteLayout(path, manifests, [layerBytes, config, manifest]);
    }

    /// <summary>
    /// An OCI layout of many small distinct images, one a name (its one layer holds a file naming it): for a runtime that
    /// must hold many images, each its own id, without a container ever made from them.
    /// </summary>
    public static void WriteMany(string path, IReadOnlyList<string> names)
    {
        var manifests = new JsonArray();
        var blobs = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var n in names)
        {
            var layer = new MemoryStream();
            using (var t = new TarWriter(layer, TarEntryFormat.Pax, leaveOpen: true))
            {
                t.WriteEntry(Bytes("marker", Encoding.UTF8.GetBytes(n)));
            }

            var layerBytes = layer.ToArray();
            var config = Encoding.UTF8.GetBytes(new JsonObject
            {
                ["architecture"] = "amd64",
                ["os"] = "linux",
                ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(Digest(layerBytes)) },
            }.ToJsonString());
            var manifest = Encoding.UTF8.GetBytes(new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                ["config"] = new JsonObject { ["mediaType"] = "application/vnd.oci.image.config.v1+json", ["digest"] = Digest(config), ["size"] = config.Length },
                ["layers"] = new JsonArray(new JsonObject { ["mediaType"] = "application/vnd.oci.image.layer.v1.tar", ["digest"] = Digest(layerBytes), ["size"] = layerBytes.Length }),
            }.ToJsonString());
            foreach (var blob in new[] { layerBytes, config, manifest })
            {
                blobs[Digest(blob)] = blob;
            }

            manifests.Add(IndexEntry(manifest, n));
        }

        WriteLayout(path, manifests, blobs.Values);
    }

    // The index's entry of one image manifest under a name (containerd's import takes the name from the annotation).
    private static JsonObject IndexEntry(byte[] manifest, string name) => new()
    {
        ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
        ["digest"] = Digest(manifest),
        ["size"] = manifest.Length,
        ["platform"] = new JsonObject { ["architecture"] = "amd64", ["os"] = "linux" },
        ["annotations"] = new JsonObject { ["io.containerd.image.name"] = name, ["org.opencontainers.image.ref.name"] = name[(name.LastIndexOf(':') + 1)..] },
    };

    // The OCI layout as a tar: oci-layout, the index of `manifests`, and every blob once under blobs/sha256/.
    private static void WriteLayout(string path, JsonArray manifests, IEnumerable<byte[]> blobs)
    {
        var index = Encoding.UTF8.GetBytes(new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = "application/vnd.oci.image.index.v1+json", ["manifests"] = manifests }.ToJsonString());
        using var fs = System.IO.File.Create(path);
        using var archive = new TarWriter(fs, TarEntryFormat.Pax);
        archive.WriteEntry(Bytes("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"u8.ToArray()));
        archive.WriteEntry(Bytes("index.json", index));
        archive.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "blobs/"));
        archive.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "blobs/sha256/"));
        foreach (var blob in blobs.DistinctBy(Digest))
        {
            archive.WriteEntry(Bytes("blobs/sha256/" + Digest(blob)["sha256:".Length..], blob));
        }
    }

    private static string Digest(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private static PaxTarEntry Bytes(string name, byte[] data) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data), Mode = (UnixFileMode)Convert.ToInt32("644", 8) };

    private static PaxTarEntry FileEntry(string source, string name, string mode) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.IO.File.ReadAllBytes(source)), Mode = (UnixFileMode)Convert.ToInt32(mode, 8) };
}
