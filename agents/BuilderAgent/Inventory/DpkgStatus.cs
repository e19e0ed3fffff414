using System.Text;

namespace Toolforge.Agents.BuilderAgent.Inventory;

/// <summary>
/// Reads an image's dpkg database (<c>/var/lib/dpkg/status</c>, and the one-file-per-package <c>status.d/</c> of
/// distroless images) into the packages <c>dpkg-query -W</c> lists: every stanza whose state is not
/// <c>not-installed</c>. The file comes from an image, so it is outside input: its size, the number of packages and
/// every field the inventory keeps are bounded, and a name, version or architecture that dpkg would not write refuses
/// the whole file, in one line naming the file and the line (an inventory that silently left packages out would be
/// worse than none).
/// </summary>
public static class DpkgStatus
{
    /// <summary>A Debian image's status file is 1–3 MiB (this builder host's, 1,022 packages: 0.9 MiB).</summary>
    public const int MaxBytes = 32 * 1024 * 1024;

    public const int MaxPackages = Common.Contracts.ReportLimits.MaxPackagesPerImage;

    public const int MaxName = Common.Contracts.ReportLimits.MaxPackageName;

    public const int MaxVersion = Common.Contracts.ReportLimits.MaxPackageVersion;

    public const int MaxArchitecture = Common.Contracts.ReportLimits.MaxPackageArchitecture;

    /// <summary>The packages of <paramref name="files"/> (file name → contents), in name then architecture order.</summary>
    public static IReadOnlyList<DebPackage> Parse(IEnumerable<(string File, byte[] Contents)> files)
    {
        var packages = new Dictionary<(string, string), DebPackage>();
        long total = 0;
        foreach (var (file, contents) in files)
        {
            if (!IsStanzaFile(file))
            {
                continue; // a distroless image's <pkg>.md5sums beside each package file, or anything below status.d's top
            }

            total += contents.Length;
            if (total > MaxBytes)
            {
                throw new InventoryException($"the image's dpkg database is more than {MaxBytes / (1024 * 1024)} MiB");
            }

            foreach (var p in ParseFile(file, contents))
            {
                if (!packages.TryAdd((p.Name, p.Architecture), p))
                {
                    throw new InventoryException($"{Safe(file)}: package {p.Name}:{p.Architecture} is recorded twice");
                }

                if (packages.Count > MaxPackages)
                {
                    throw new InventoryException($"the image's dpkg database holds more than {MaxPackages} packages");
                }
            }
        }

        return packages.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Architecture, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Whether a file of the copied database holds package stanzas: the status file, or a file directly in status.d/
    /// that is not a <c>.md5sums</c> list (distroless keeps "&lt;package&gt;" and "&lt;package&gt;.md5sums" side by side there,
    /// as syft and trivy read it).
    /// </summary>
    public static bool IsStanzaFile(string file)
    {
        const string Dir = "/var/lib/dpkg/status.d/";
        if (!file.StartsWith(Dir, StringComparison.Ordinal))
        {
            return true;
        }

        var rest = file[Dir.Length..];
        return rest.Length > 0 && !rest.Contains('/', StringComparison.Ordinal) && !rest.EndsWith(".md5sums", StringComparison.Ordinal);
    }

    private static List<DebPackage> ParseFile(string file, byte[] contents)
    {
        var result = new List<DebPackage>();
        var text = new UTF8Encoding(false, false).GetString(contents);
        string? name = null, version = null, arch = null, status = null;
        var inStanza = false;
        var lineNo = 0;
        var stanzaLine = 1;
        var pos = 0;
        while (pos <= text.Length)
        {
            var end = text.IndexOf('\n', pos);
            end = end < 0 ? text.Length : end;
            var line = text.AsSpan(pos, end - pos).TrimEnd('\r');
            lineNo++;
            if (line.IsWhiteSpace())
            {
                if (inStanza)
                {
                    if (Finish(file, stanzaLine, name, version, arch, status) is { } p)
                    {
                        result.Add(p);
                    }
                }

                name = version = arch = status = null;
                inStanza = false;
                stanzaLine = lineNo + 1;
            }
            else if (line[0] is not (' ' or '\t'))
            {
                var colon = line.IndexOf(':');
                if (colon <= 0)
                {
                    throw new InventoryException($"{Safe(file)}: line {lineNo}: not a \"Field: value\" line");
                }

                inStanza = true;
                var field = line[..colon];
                var value = line[(colon + 1)..].Trim();
                if (field.Equals("Package", StringComparison.OrdinalIgnoreCase))
                {
                    name = Field(file, lineNo, "Package", value, MaxName);
                }
                else if (field.Equals("Version", StringComparison.OrdinalIgnoreCase))
                {
                    version = Field(file, lineNo, "Version", value, MaxVersion);
                }
                else if (field.Equals("Architecture", StringComparison.OrdinalIgnoreCase))
                {
                    arch = Field(file, lineNo, "Architecture", value, MaxArchitecture);
                }
                else if (field.Equals("Status", StringComparison.OrdinalIgnoreCase))
                {
                    status = Field(file, lineNo, "Status", value, 64);
                }
            }

            pos = end + 1;
        }

        if (inStanza && Finish(file, stanzaLine, name, version, arch, status) is { } last)
        {
            result.Add(last);
        }

        return result;
    }

    private static string Field(string file, int line, string field, ReadOnlySpan<char> value, int max) =>
        value.Length <= max ? value.ToString() : throw new InventoryException($"{Safe(file)}: line {line}: {field} is longer than {max} characters");

    // A stanza is one package: dpkg-query -W lists it unless its state (the third word of Status) is not-installed.
    // status.d stanzas (distroless) carry no Status: they are installed.
    private static DebPackage? Finish(string file, int line, string? name, string? version, string? arch, string? status)
    {
        if (name is null)
        {
            throw new InventoryException($"{Safe(file)}: the stanza at line {line} has no Package field");
        }

        var state = "installed";
        if (status is not null)
        {
            var words = status.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length != 3 || !words[2].All(c => c is (>= 'a' and <= 'z') or '-'))
            {
                throw new InventoryException($"{Safe(file)}: the stanza at line {line} ({Safe(name)}) has a Status that is not \"want flag state\"");
            }

            state = words[2];
        }

        if (state == "not-installed")
        {
            return null;
        }

        if (!IsName(name))
        {
            throw new InventoryException($"{Safe(file)}: the stanza at line {line} names package \"{Safe(name)}\", which is not a Debian package name");
        }

        version ??= string.Empty;
        if (version.Length == 0 && state is "installed")
        {
            throw new InventoryException($"{Safe(file)}: the stanza at line {line} ({name}) is installed and has no Version");
        }

        if (!Common.Contracts.DebianPackages.IsVersion(version))
        {
            throw new InventoryException($"{Safe(file)}: the stanza at line {line} ({name}) has version \"{Safe(version)}\", which is not a Debian version");
        }

        arch ??= string.Empty;
        if (!Common.Contracts.DebianPackages.IsArchitecture(arch))
        {
            throw new InventoryException($"{Safe(file)}: the stanza at line {line} ({name}) has architecture \"{Safe(arch)}\", which is not a Debian architecture");
        }

        return new DebPackage(name, version, arch, state);
    }

    /// <summary>Debian policy 5.6.1 (<see cref="Common.Contracts.DebianPackages.IsName"/>).</summary>
    public static bool IsName(string s) => Common.Contracts.DebianPackages.IsName(s);

    internal static string Safe(string s) => Common.Cli.Output.Escape(s.Length <= 100 ? s : s[..100] + "…");
}
