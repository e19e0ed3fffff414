using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Toolforge.Agents.BuilderAgent.Images;

/// <summary>
/// What an image is built from: its rendered Dockerfile and the files its COPY/ADD lines take from the build
/// context (the repository root, as build.py uses). From these come the input hash (stored as an image label so an
/// unchanged image is not rebuilt) and the build context tar, which carries the rendered Dockerfile so nothing is
/// ever written into the source tree.
/// </summary>
public sealed partial class BuildInputs
{
    /// <summary>
    /// One path segment of a COPY source as Docker globs it (<c>*</c>, <c>?</c>, <c>[...]</c>): a pattern that is no
    /// glob (an unterminated <c>[</c>) is the repository's mistake, named, never an exception that stops the daemon.
    /// </summary>
    internal static Regex Glob(string segment)
    {
        try
        {
            return new Regex("^" + Regex.Escape(segment).Replace("\\*", "[^/]*", StringComparison.Ordinal)
                .Replace("\\?", "[^/]", StringComparison.Ordinal).Replace("\\[", "[", StringComparison.Ordinal) + "$",
                RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException)
        {
            throw new RepositoryException($"COPY source pattern \"{Toolforge.Agents.Common.Cli.Output.Escape(segment.Length > 200 ? segment[..200] : segment)}\" is not a valid glob");
        }
    }

    public const string HashLabel = "org.toolforge.builder.input-hash";
    public const string DockerfileInContext = ".toolforge-builder/Dockerfile";

    private BuildInputs(string root, string dockerfile, IReadOnlyList<string> files)
    {
        Root = root;
        Dockerfile = dockerfile;
        Files = files;
    }

    public string Root { get; }

    public string Dockerfile { get; }

    /// <summary>Context-relative paths ('/' separated) of every file the Dockerfile copies, sorted.</summary>
    public IReadOnlyList<string> Files { get; }

    [GeneratedRegex(@"^\s*(COPY|ADD)\s+(.*)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex CopyLine();

    public static BuildInputs Collect(string root, string dockerfile, string imageFile)
    {
        var files = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (instruction, args) in Instructions(dockerfile))
        {
            var sources = Sources(args, imageFile, instruction);
            foreach (var source in sources)
            {
                var matched = Resolve(root, source).ToList();
                if (matched.Count == 0)
                {
                    throw new RepositoryException($"{imageFile}: {instruction} source \"{source}\" matches no file under {root}");
                }

                files.UnionWith(matched);
            }
        }

        return new BuildInputs(root, dockerfile, files.ToList());
    }

    /// <summary>sha256 over the Dockerfile, every copied file (path, mode, content) and the parent image's ID.</summary>
    public string Hash(string parentIdentity)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(s));
            sha.AppendData([0]);
        }

        Add("toolforge-builder-input-v1");
        Add(parentIdentity);
        Add(Dockerfile);
        foreach (var f in Files)
        {
            var full = Path.Combine(Root, f);
            Add(f);
            Add(OperatingSystem.IsWindows() ? "-" : ((int)File.GetUnixFileMode(full)).ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var stream = File.OpenRead(full);
            Add(Convert.ToHexString(SHA256.HashData(stream)));
        }

        return "sha256:" + Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The build context: the copied files and the rendered Dockerfile, as an uncompressed tar.</summary>
    public async Task<MemoryStream> ContextTarAsync(CancellationToken ct)
    {
        var buffer = new MemoryStream();
        await using (var tar = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            var dirs = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var f in Files)
            {
                for (var d = Path.GetDirectoryName(f)?.Replace('\\', '/'); !string.IsNullOrEmpty(d); d = Path.GetDirectoryName(d)?.Replace('\\', '/'))
                {
                    dirs.Add(d);
                }
            }

            foreach (var d in dirs)
            {
                await tar.WriteEntryAsync(Path.Combine(Root, d), d + "/", ct).ConfigureAwait(false);
            }

            foreach (var f in Files)
            {
                await tar.WriteEntryAsync(Path.Combine(Root, f), f, ct).ConfigureAwait(false);
            }

            var entry = new PaxTarEntry(TarEntryType.RegularFile, DockerfileInContext)
            {
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes(Dockerfile)),
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                ModificationTime = DateTimeOffset.UnixEpoch,
            };
            await tar.WriteEntryAsync(entry, ct).ConfigureAwait(false);
        }

        buffer.Position = 0;
        return buffer;
    }

    /// <summary>The Dockerfile's instructions with continuation lines joined and comments dropped.</summary>
    internal static IEnumerable<(string Instruction, string Args)> Instructions(string dockerfile)
    {
        var logical = new StringBuilder();
        foreach (var raw in dockerfile.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            var line = raw.TrimEnd();
            if (logical.Length == 0 && line.TrimStart().StartsWith('#'))
            {
                continue;
            }

            if (line.EndsWith('\\'))
            {
                logical.Append(line.AsSpan(0, line.Length - 1)).Append(' ');
                continue;
            }

            logical.Append(line);
            var text = logical.ToString();
            logical.Clear();
            var m = CopyLine().Match(text);
            if (m.Success)
            {
                yield return (m.Groups[1].Value.ToUpperInvariant(), m.Groups[2].Value.Trim());
            }
        }
    }

    /// <summary>The context sources of one COPY/ADD (not --from=stage copies, not URLs).</summary>
    internal static IReadOnlyList<string> Sources(string args, string file, string instruction)
    {
        List<string> words;
        var rest = args;
        var flags = new List<string>();
        while (rest.StartsWith("--", StringComparison.Ordinal))
        {
            var end = rest.IndexOf(' ', StringComparison.Ordinal);
            flags.Add(end < 0 ? rest : rest[..end]);
            rest = end < 0 ? string.Empty : rest[(end + 1)..].TrimStart();
        }

        if (flags.Any(f => f.StartsWith("--from=", StringComparison.Ordinal)))
        {
            return [];
        }

        if (rest.StartsWith('['))
        {
            try
            {
                words = JsonSerializer.Deserialize(rest, BuildInputsJson.Default.ListString) ?? [];
            }
            catch (JsonException ex)
            {
                throw new RepositoryException($"{file}: {instruction} {args}: not a JSON array ({ex.Message})");
            }
        }
        else
        {
            words = rest.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).ToList();
        }

        if (words.Count < 2)
        {
            throw new RepositoryException($"{file}: {instruction} {args}: needs at least a source and a destination");
        }

        return words.Take(words.Count - 1)
            .Where(w => !(instruction == "ADD" && (w.StartsWith("http://", StringComparison.Ordinal) || w.StartsWith("https://", StringComparison.Ordinal) || w.StartsWith("git@", StringComparison.Ordinal))))
            .ToList();
    }

    /// <summary>Files under <paramref name="root"/> that a COPY source names: a file, a directory (recursively) or a glob.</summary>
    internal static IEnumerable<string> Resolve(string root, string source)
    {
        var clean = source.Replace('\\', '/').TrimStart('/');
        while (clean.StartsWith("./", StringComparison.Ordinal))
        {
            clean = clean[2..];
        }

        if (clean is "." or "")
        {
            throw new RepositoryException($"COPY of the whole build context (\"{source}\") is not supported: the context is the whole repository");
        }

        if (clean.Split('/').Contains(".."))
        {
            throw new RepositoryException($"COPY source \"{source}\" leaves the build context");
        }

        var segments = clean.TrimEnd('/').Split('/');
        foreach (var match in Expand(root, string.Empty, segments, 0))
        {
            var full = Path.Combine(root, match);
            if (Directory.Exists(full))
            {
                foreach (var f in Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories))
                {
                    yield return Path.GetRelativePath(root, f).Replace('\\', '/');
                }
            }
            else if (File.Exists(full))
            {
                yield return match;
            }
        }
    }

    private static IEnumerable<string> Expand(string root, string prefix, string[] segments, int i)
    {
        if (i == segments.Length)
        {
            yield return prefix;
            yield break;
        }

        var seg = segments[i];
        var dir = Path.Combine(root, prefix);
        if (seg.IndexOfAny(['*', '?', '[']) < 0)
        {
            var next = prefix.Length == 0 ? seg : $"{prefix}/{seg}";
            if (File.Exists(Path.Combine(root, next)) || Directory.Exists(Path.Combine(root, next)))
            {
                foreach (var m in Expand(root, next, segments, i + 1))
                {
                    yield return m;
                }
            }

            yield break;
        }

        if (!Directory.Exists(dir))
        {
            yield break;
        }

        var pattern = Glob(seg);
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal))
        {
            if (entry is not null && pattern.IsMatch(entry))
            {
                foreach (var m in Expand(root, prefix.Length == 0 ? entry : $"{prefix}/{entry}", segments, i + 1))
                {
                    yield return m;
                }
            }
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(List<string>))]
internal sealed partial class BuildInputsJson : System.Text.Json.Serialization.JsonSerializerContext;
