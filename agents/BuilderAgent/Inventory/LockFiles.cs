using System.Text;
using System.Text.Json;
using Toolforge.Agents.Common.Contracts;

namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>One language package a lock file of the image pins: its ecosystem, name, version, and the lock file.</summary>
public sealed record LanguagePackage(string Ecosystem, string Name, string Version, string LockFile)
{
    /// <summary>A gem's platform ("x86_64-linux"), written apart from its version as purl-spec asks; empty otherwise.</summary>
    public string Platform { get; init; } = string.Empty;

    /// <summary>"ECOSYSTEM:NAME", as the coordinator keeps it (<see cref="LanguagePackages"/>).</summary>
    public string Qualified => LanguagePackages.Qualified(Ecosystem, Name);
}

/// <summary>
/// The language packages of an image (issue 27), from the lock files it names in its label
/// <see cref="Label"/> (absolute paths, comma-separated: the image's author knows where its application's lock files are;
/// the builder does not guess). The format is the file's name: npm's <c>package-lock.json</c>,
/// <c>npm-shrinkwrap.json</c> and <c>.package-lock.json</c> (lockfile v1 to v3), <c>composer.lock</c>,
/// <c>Gemfile.lock</c> and <c>Pipfile.lock</c>. Each package once per (ecosystem, name, version), name order; an entry
/// whose version is in no form taken (an alias, a git, file or path dependency) is skipped and counted. A file in another
/// format, or a lock file this reading cannot make sense of, is an <see cref="InventoryException"/> naming it — and
/// fails only the language part of the image's inventory, never its Debian packages.
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

    /// <summary>What one lock file pins: its packages, and the entries skipped (no version in a form the inventory takes: an alias, a git, file or path dependency).</summary>
    public sealed record Parsed(IReadOnlyList<LanguagePackage> Packages, int Skipped);

    /// <summary>
    /// The packages of one lock file at <paramref name="path"/> (its name says the format), at most
    /// <paramref name="max"/> (more: refused, read no further — memory stays bounded). An entry whose name or version is
    /// in no form the inventory takes is skipped and counted, not a failure of the file.
    /// </summary>
    public static Parsed Parse(string path, byte[] contents, int max = Common.Contracts.ReportLimits.MaxPackagesPerImage)
    {
        var ecosystem = FormatOf(path) ?? throw new InventoryException($"{Promotion.RegistryClient.Safe(path)}: not a lock file this builder reads");
        List<(string Name, string Version)> found;
        try
        {
            // Read no further than a few times what is taken (a lock file lists a package at several places).
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
        var skipped = 0;
        foreach (var (name, rawVersion) in found.Distinct())
        {
            var (version, platform) = ecosystem == LanguagePackages.Gem && rawVersion.IndexOf('-', StringComparison.Ordinal) is var dash and > 0
                ? (rawVersion[..dash], rawVersion[(dash + 1)..]) // Bundler's "1.15.4-x86_64-linux": the version and its platform
                : (rawVersion, string.Empty);
            var qualified = LanguagePackages.Qualified(ecosystem, LanguagePackages.Normalize(ecosystem, name));
            if (!LanguagePackages.IsName(qualified) || !LanguagePackages.IsVersion(version) || (platform.Length > 0 && !LanguagePackages.IsVersion(platform)))
            {
                skipped++;
                continue;
            }

            packages.Add(new LanguagePackage(ecosystem, qualified[(ecosystem.Length + 1)..], version, path) { Platform = platform });
        }

        if (packages.Count > max)
        {
            throw new InventoryException($"{Promotion.RegistryClient.Safe(path)}: more than {max} packages (an inventory carries at most {Common.Contracts.ReportLimits.MaxPackagesPerImage})");
        }

        return new Parsed([.. packages.DistinctBy(p => (p.Name, p.Version, p.Platform)).OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Version, StringComparer.Ordinal)], skipped);
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
                found.Add((name, p.Value.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : string.Empty)); // none: skipped
                Bound(found);
            }

            return found;
        }

        void Walk(JsonElement dependencies)
        {
            foreach (var d in dependencies.EnumerateObject())
            {
                found.Add((d.Name, d.Value.ValueKind == JsonValueKind.Object && d.Value.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : string.Empty));
                Bound(found);
                if (d.Value.ValueKind == JsonValueKind.Object && d.Value.TryGetProperty("dependencies", out var nested) && nested.ValueKind == JsonValueKind.Object)
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
                foreach (var p in list.EnumerateArray())
                {
                    var name = p.ValueKind == JsonValueKind.Object && p.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : string.Empty;
                    var version = p.ValueKind == JsonValueKind.Object && p.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : string.Empty;
                    found.Add((name, version.StartsWith('v') && version.Length > 1 && char.IsAsciiDigit(version[1]) ? version[1..] : version));
                    Bound(found);
                }
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
                    // A VCS, path or editable entry has no version: skipped and counted.
                    var pinned = p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : string.Empty;
                    found.Add((p.Name, pinned.StartsWith("==", StringComparison.Ordinal) ? pinned[2..] : pinned));
                    Bound(found);
                }
            }
        }

        return any ? found : throw new FormatException("no \"default\"");
    }

    // The specs of the GEM, GIT and PATH sections: "    name (version)" four spaces in (their dependencies are six in); a
    // platform suffix ("1.15.4-x86_64-linux") as Bundler writes it. Read line by line (no array of every line).
    private static List<(string, string)> Gemfile(byte[] contents)
    {
        var found = new List<(string, string)>();
        var inSection = false;
        var inSpecs = false;
        var sawGem = false;
        using var reader = new StringReader(Encoding.UTF8.GetString(contents));
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0 && !char.IsWhiteSpace(line[0]))
            {
                inSection = line is "GEM" or "GIT" or "PATH";
                sawGem |= line == "GEM";
                inSpecs = false;
                continue;
            }

            if (inSection && line == "  specs:")
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
                Bound(found);
            }
        }

        return sawGem ? found : throw new FormatException("no GEM section");
    }

    // A lock file lists packages more than once (nested npm trees): reading stops far past what one inventory takes.
    private static void Bound(List<(string, string)> found)
    {
        if (found.Count > 4 * Common.Contracts.ReportLimits.MaxPackagesPerImage)
        {
            throw new InventoryException($"more than {4 * Common.Contracts.ReportLimits.MaxPackagesPerImage} entries: not read further");
        }
    }
}
