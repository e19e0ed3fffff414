using System.Text;
using System.Text.Json;
using Toolforge.Agents.Common.Contracts;

namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>One language package a lock file of the image pins: its ecosystem, name, version, and the lock file.</summary>
public sealed record LanguagePackage(string Ecosystem, string Name, string Version, string LockFile)
{
    /// <summary>"ECOSYSTEM:NAME", as the coordinator keeps it (<see cref="LanguagePackages"/>).</summary>
    public string Qualified => LanguagePackages.Qualified(Ecosystem, Name);
}

/// <summary>
/// The language packages of an image (issue 27), from the lock files it names in its label
/// <see cref="Label"/> (absolute paths, comma-separated: the image's author knows where its application's lock files are;
/// the builder does not guess). The format is the file's name: npm's <c>package-lock.json</c>,
/// <c>npm-shrinkwrap.json</c> and <c>.package-lock.json</c> (lockfile v1 to v3), <c>composer.lock</c>,
/// <c>Gemfile.lock</c> and <c>Pipfile.lock</c>. Each package once per (ecosystem, name, version), name order. A file
/// in another format, or a lock file this reading cannot make sense of, is an <see cref="InventoryException"/> naming it:
/// an inventory that silently missed an application's packages would say they are not there.
/// </summary>
public static class LockFiles
{
    public const string Label = "org.toolforge.inventory.lock-files";

    /// <summary>At most this many lock files an image names.</summary>
    public const int MaxFiles = 16;

    /// <summary>The lock files of one image, read together, at most this many bytes.</summary>
    public const long MaxBytes = 32 * 1024 * 1024;

    /// <summary>The paths the label names, checked: absolute, without "..", at most <see cref="MaxFiles"/>, a known format each.</summary>
    public static IReadOnlyList<string> Paths(string? label)
    {
        if (string.IsNullOrWhiteSpace(label))
        {
            return [];
        }

        var paths = label.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToList();
        if (paths.Count > MaxFiles)
        {
            throw new InventoryException($"the image's label {Label} names {paths.Count} lock files, at most {MaxFiles}");
        }

        foreach (var p in paths)
        {
            if (!p.StartsWith('/') || p.Length > 512 || p.Split('/').Contains("..") || p.Any(char.IsControl))
            {
                throw new InventoryException($"the image's label {Label} names \"{Promotion.RegistryClient.Safe(p)}\": not an absolute path");
            }

            if (FormatOf(p) is null)
            {
                throw new InventoryException($"the image's label {Label} names {Promotion.RegistryClient.Safe(p)}: not a lock file this builder reads (package-lock.json, npm-shrinkwrap.json, .package-lock.json, composer.lock, Gemfile.lock, Pipfile.lock)");
            }
        }

        return paths;
    }

    private static string? FormatOf(string path) => Path.GetFileName(path) switch
    {
        "package-lock.json" or "npm-shrinkwrap.json" or ".package-lock.json" => LanguagePackages.Npm,
        "composer.lock" => LanguagePackages.Composer,
        "Gemfile.lock" => LanguagePackages.Gem,
        "Pipfile.lock" => LanguagePackages.PyPi,
        _ => null,
    };

    /// <summary>The packages of one lock file at <paramref name="path"/> (its name says the format).</summary>
    public static IReadOnlyList<LanguagePackage> Parse(string path, byte[] contents)
    {
        var ecosystem = FormatOf(path) ?? throw new InventoryException($"{Promotion.RegistryClient.Safe(path)}: not a lock file this builder reads");
        List<(string Name, string Version)> found;
        try
        {
            found = ecosystem switch
            {
                LanguagePackages.Npm => Npm(contents),
                LanguagePackages.Composer => Composer(contents),
                LanguagePackages.Gem => Gemfile(contents),
                _ => Pipfile(contents),
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InventoryException($"{Promotion.RegistryClient.Safe(path)}: not a {ecosystem} lock file this builder can read ({Promotion.RegistryClient.Safe(ex.Message)})");
        }

        var packages = new List<LanguagePackage>();
        foreach (var (name, version) in found.Distinct())
        {
            var qualified = LanguagePackages.Qualified(ecosystem, name);
            if (!LanguagePackages.IsName(qualified) || !LanguagePackages.IsVersion(version))
            {
                throw new InventoryException($"{Promotion.RegistryClient.Safe(path)}: a package \"{Git.GitRunner.Safe(name, 80)}\" at \"{Git.GitRunner.Safe(version, 40)}\" is not a name and version the inventory takes");
            }

            packages.Add(new LanguagePackage(ecosystem, name, version, path));
        }

        return [.. packages.OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Version, StringComparer.Ordinal)];
    }

    // lockfileVersion 2 and 3: "packages" keyed by the install path ("" is the project itself; "node_modules/a",
    // "node_modules/a/node_modules/b", "node_modules/@scope/c"); links (workspaces) are not installed packages.
    // Version 1: "dependencies", nested.
    private static List<(string, string)> Npm(byte[] contents)
    {
        using var doc = JsonDocument.Parse(contents);
        var root = doc.RootElement;
        var found = new List<(string, string)>();
        if (root.TryGetProperty("packages", out var packages) && packages.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in packages.EnumerateObject())
            {
                var at = p.Name.LastIndexOf("node_modules/", StringComparison.Ordinal);
                if (at < 0 || p.Value.ValueKind != JsonValueKind.Object || (p.Value.TryGetProperty("link", out var link) && link.ValueKind == JsonValueKind.True))
                {
                    continue;
                }

                var name = p.Value.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : p.Name[(at + "node_modules/".Length)..];
                found.Add((name, p.Value.GetProperty("version").GetString() ?? throw new FormatException($"{p.Name}: no version")));
            }

            return found;
        }

        void Walk(JsonElement dependencies)
        {
            foreach (var d in dependencies.EnumerateObject())
            {
                found.Add((d.Name, d.Value.GetProperty("version").GetString() ?? throw new FormatException($"{d.Name}: no version")));
                if (d.Value.TryGetProperty("dependencies", out var nested) && nested.ValueKind == JsonValueKind.Object)
                {
                    Walk(nested);
                }
            }
        }

        if (root.TryGetProperty("dependencies", out var v1) && v1.ValueKind == JsonValueKind.Object)
        {
            Walk(v1);
            return found;
        }

        throw new FormatException("neither \"packages\" nor \"dependencies\"");
    }

    // "packages" and "packages-dev": [{ "name": "vendor/name", "version": "1.2.3" }].
    private static List<(string, string)> Composer(byte[] contents)
    {
        using var doc = JsonDocument.Parse(contents);
        var found = new List<(string, string)>();
        var any = false;
        foreach (var key in new[] { "packages", "packages-dev" })
        {
            if (doc.RootElement.TryGetProperty(key, out var list) && list.ValueKind == JsonValueKind.Array)
            {
                any = true;
                found.AddRange(list.EnumerateArray().Select(p => (p.GetProperty("name").GetString()!, p.GetProperty("version").GetString()!.TrimStart('v'))));
            }
        }

        return any ? found : throw new FormatException("no \"packages\"");
    }

    // "default" and "develop": { "name": { "version": "==1.2.3" } } (an entry without a version, from a VCS, is skipped).
    private static List<(string, string)> Pipfile(byte[] contents)
    {
        using var doc = JsonDocument.Parse(contents);
        var found = new List<(string, string)>();
        var any = false;
        foreach (var key in new[] { "default", "develop" })
        {
            if (doc.RootElement.TryGetProperty(key, out var section) && section.ValueKind == JsonValueKind.Object)
            {
                any = true;
                foreach (var p in section.EnumerateObject())
                {
                    if (p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("version", out var v) && v.GetString() is { } pinned)
                    {
                        // PEP 503 normalized name: what pip and PyPI compare.
                        found.Add((NormalizePyPi(p.Name), pinned.StartsWith("==", StringComparison.Ordinal) ? pinned[2..] : pinned));
                    }
                }
            }
        }

        return any ? found : throw new FormatException("no \"default\"");
    }

    private static string NormalizePyPi(string name)
    {
        var b = new StringBuilder(name.Length);
        foreach (var c in name.ToLowerInvariant())
        {
            var d = c is '_' or '.' ? '-' : c;
            if (d != '-' || b.Length == 0 || b[^1] != '-')
            {
                b.Append(d);
            }
        }

        return b.ToString();
    }

    // The GEM section's specs: "    name (version)" four spaces in (their dependencies are six spaces in); a platform
    // suffix ("1.15.4-x86_64-linux") is part of the version as Bundler writes it.
    private static List<(string, string)> Gemfile(byte[] contents)
    {
        var found = new List<(string, string)>();
        var inGem = false;
        var inSpecs = false;
        var sawGem = false;
        foreach (var raw in Encoding.UTF8.GetString(contents).Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length > 0 && !char.IsWhiteSpace(line[0]))
            {
                inGem = line == "GEM";
                sawGem |= inGem;
                inSpecs = false;
                continue;
            }

            if (inGem && line == "  specs:")
            {
                inSpecs = true;
                continue;
            }

            if (inSpecs && line.StartsWith("    ", StringComparison.Ordinal) && !line.StartsWith("     ", StringComparison.Ordinal))
            {
                var spec = line[4..];
                var open = spec.IndexOf(" (", StringComparison.Ordinal);
                if (open <= 0 || !spec.EndsWith(')'))
                {
                    throw new FormatException($"a spec line \"{spec}\" is not NAME (VERSION)");
                }

                found.Add((spec[..open], spec[(open + 2)..^1]));
            }
        }

        return sawGem ? found : throw new FormatException("no GEM section");
    }
}
