using System.Text.RegularExpressions;
using Toolforge.Agents.BuilderAgent.Templates;

namespace Toolforge.Agents.BuilderAgent.Images;

/// <summary>build.py's variables: where images go, what they are called and which tag they get.</summary>
public sealed partial record NamingOptions(string Registry = NamingOptions.DefaultRegistry, string Prefix = NamingOptions.DefaultPrefix, string Tag = "testing")
{
    public const string DefaultRegistry = "docker-registry.svc.toolforge.org";
    public const string DefaultPrefix = "toolforge";

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    /// <summary>Null when <paramref name="tag"/> is a Docker tag; else why not. The tag is rendered into Dockerfiles: nothing else may pass.</summary>
    public static string? TagProblem(string tag) =>
        TagPattern().IsMatch(tag) ? null : $"\"{(tag.Length <= 60 ? tag : tag[..60] + "…").ReplaceLineEndings(" ")}\" is not a valid image tag (letters, digits, _ . -, at most 128)";

    /// <summary>&lt;registry&gt;/&lt;prefix&gt;-&lt;path with / as -&gt;, e.g. docker-registry.svc.toolforge.org/toolforge-python311-sssd-web.</summary>
    public string Repository(string path) => $"{Registry}/{ShortName(path)}";

    public string ShortName(string path) => $"{Prefix}-{path.Replace('/', '-')}";

    public string FullName(string path) => $"{Repository(path)}:{Tag}";
}

/// <summary>One image folder: its path in the repository and whether it has a template or a plain Dockerfile.</summary>
public sealed record ImageFolder(string Path, string DockerfileName)
{
    public bool IsTemplate => DockerfileName == "Dockerfile.template";

    public string DockerfilePath => $"{Path}/{DockerfileName}";
}

/// <summary>
/// A rendered image: its Dockerfile text, what it is built FROM, and the other templates its rendering loaded
/// (<see cref="Includes"/>: macros.jinja2 and whatever that imports; paths relative to the repository, '/').
/// </summary>
public sealed record ImageDefinition(ImageFolder Folder, string Dockerfile, string From, string? ParentPath, IReadOnlyList<string>? Includes = null)
{
    public string Path => Folder.Path;

    public IReadOnlyList<string> TemplateIncludes => Includes ?? [];
}

/// <summary>A problem with the repository (a cycle, a missing parent, two folders with one name), naming the file.</summary>
public sealed class RepositoryException(string message) : Exception(message);

/// <summary>
/// An image repository laid out as Toolforge's toollabs-images: each folder with a Dockerfile.template (or a plain
/// Dockerfile) is an image; its parent is the image its rendered FROM names by the naming convention; any other FROM
/// is an external base.
/// </summary>
public sealed partial class ImageRepository
{
    private readonly JinjaEnvironment _jinja;

    private ImageRepository(string root, IReadOnlyList<ImageFolder> folders)
    {
        Root = root;
        Folders = folders;
        _jinja = new JinjaEnvironment(root);
    }

    public string Root { get; }

    public IReadOnlyList<ImageFolder> Folders { get; }

    [GeneratedRegex(@"^\s*FROM\s+(?:--\S+\s+)*(\S+)", RegexOptions.Multiline | RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex FromLine();

    public static ImageRepository Open(string root)
    {
        var full = System.IO.Path.GetFullPath(root);
        if (!Directory.Exists(full))
        {
            throw new RepositoryException($"{full}: no such directory");
        }

        var folders = new List<ImageFolder>();
        Scan(full, full, folders);
        if (folders.Count == 0)
        {
            throw new RepositoryException($"{full}: no folder with a Dockerfile.template or Dockerfile (is this the image repository? use --repo DIR)");
        }

        folders.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return new ImageRepository(full, folders);
    }

    private static void Scan(string root, string dir, List<ImageFolder> found)
    {
        foreach (var sub in Directory.EnumerateDirectories(dir).Order(StringComparer.Ordinal))
        {
            var name = System.IO.Path.GetFileName(sub);
            if (name.StartsWith('.'))
            {
                continue;
            }

            var rel = System.IO.Path.GetRelativePath(root, sub).Replace('\\', '/');
            if (File.Exists(System.IO.Path.Combine(sub, "Dockerfile.template")))
            {
                found.Add(new ImageFolder(rel, "Dockerfile.template"));
            }
            else if (File.Exists(System.IO.Path.Combine(sub, "Dockerfile")))
            {
                found.Add(new ImageFolder(rel, "Dockerfile"));
            }

            Scan(root, sub, found);
        }
    }

    public ImageFolder Find(string path)
    {
        var p = path.Trim().TrimEnd('/');
        return Folders.FirstOrDefault(f => f.Path == p)
            ?? throw new RepositoryException($"no image \"{path}\" in {Root} (no {p}/Dockerfile.template or {p}/Dockerfile)");
    }

    /// <summary>The Dockerfile of an image as build.py would write it (rendered when it is a template).</summary>
    public string Render(ImageFolder folder, NamingOptions naming) => Render(folder, naming, null);

    /// <summary>As <see cref="Render(ImageFolder, NamingOptions)"/>; the templates the rendering loaded go to <paramref name="includes"/>.</summary>
    public string Render(ImageFolder folder, NamingOptions naming, ISet<string>? includes)
    {
        if (!folder.IsTemplate)
        {
            return File.ReadAllText(System.IO.Path.Combine(Root, folder.DockerfilePath));
        }

        try
        {
            return _jinja.Render(folder.DockerfilePath, new Dictionary<string, object?>
            {
                ["registry"] = naming.Registry,
                ["image_prefix"] = naming.Prefix,
                ["tag"] = naming.Tag,
                ["image_path"] = folder.Path,
            }, includes);
        }
        catch (TemplateException ex)
        {
            throw new RepositoryException($"{System.IO.Path.Combine(Root, ex.File)}:{ex.Line}: {ex.Reason}");
        }
    }

    /// <summary>Renders every image and links each to its parent; throws on a missing parent, a cycle or a name clash.</summary>
    public ImageGraph Graph(NamingOptions naming)
    {
        var byName = new Dictionary<string, ImageFolder>(StringComparer.Ordinal);
        foreach (var f in Folders)
        {
            var shortName = naming.ShortName(f.Path);
            if (byName.TryGetValue(shortName, out var other))
            {
                throw new RepositoryException($"{System.IO.Path.Combine(Root, f.DockerfilePath)}: folders {other.Path} and {f.Path} both make the image {naming.Repository(f.Path)}");
            }

            byName[shortName] = f;
        }

        var prefix = $"{naming.Registry}/{naming.Prefix}-";
        var suffix = $":{naming.Tag}";
        var definitions = new List<ImageDefinition>();
        foreach (var f in Folders)
        {
            var includes = new SortedSet<string>(StringComparer.Ordinal);
            var text = Render(f, naming, includes);
            var m = FromLine().Match(text);
            if (!m.Success)
            {
                throw new RepositoryException($"{System.IO.Path.Combine(Root, f.DockerfilePath)}: no FROM line");
            }

            var from = m.Groups[1].Value;
            string? parent = null;
            if (from.StartsWith(prefix, StringComparison.Ordinal))
            {
                var rest = from[prefix.Length..];
                var colon = rest.LastIndexOf(':');
                var name = colon >= 0 ? rest[..colon] : rest;
                if (!byName.TryGetValue($"{naming.Prefix}-{name}", out var p))
                {
                    throw new RepositoryException($"{System.IO.Path.Combine(Root, f.DockerfilePath)}: FROM {from} names a parent image that no folder makes (expected a folder for \"{naming.Prefix}-{name}\")");
                }

                if (!from.EndsWith(suffix, StringComparison.Ordinal))
                {
                    throw new RepositoryException($"{System.IO.Path.Combine(Root, f.DockerfilePath)}: FROM {from} must use the tag being built ({naming.Tag}), as children build on their parent's image with the same tag");
                }

                parent = p.Path;
            }

            definitions.Add(new ImageDefinition(f, text, from, parent, [.. includes]));
        }

        return new ImageGraph(Root, definitions);
    }
}
