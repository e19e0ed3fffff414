using System.Text.RegularExpressions;
using Toolforge.Agents.BuilderAgent.Images;

namespace Toolforge.Agents.BuilderAgent.Git;

/// <summary>Why an image is in a selection.</summary>
public enum ChangeReasonKind
{
    /// <summary>A file in the image's own folder (not in a child image's folder) changed.</summary>
    Folder,

    /// <summary>A template the image's rendering loads (macros.jinja2, what that imports) changed.</summary>
    Include,

    /// <summary>A file outside its folder that the image's COPY/ADD takes (shared/...) changed.</summary>
    Copy,

    /// <summary>The image is built on a selected image (its parent is rebuilt).</summary>
    Parent,
}

/// <summary>One reason: its kind and the changed path (or, for <see cref="ChangeReasonKind.Parent"/>, the parent image).</summary>
public sealed record ChangeReason(ChangeReasonKind Kind, string Path)
{
    public override string ToString() => Kind switch
    {
        ChangeReasonKind.Folder => $"changed {Path}",
        ChangeReasonKind.Include => $"includes {Path}, changed",
        ChangeReasonKind.Copy => $"copies {Path}, changed",
        _ => $"built on {Path}",
    };
}

/// <summary>A selected image and why: its first direct reason, or its parent.</summary>
public sealed record SelectedImage(string Path, ChangeReason Reason, IReadOnlyList<ChangeReason> DirectReasons);

/// <summary>What a set of changed paths rebuilds, parents before children; and the paths that rebuild nothing.</summary>
public sealed record ChangeSelection(IReadOnlyList<SelectedImage> Images, IReadOnlyList<string> Unmatched)
{
    public IReadOnlyList<string> Paths => [.. Images.Select(i => i.Path)];
}

/// <summary>
/// Which images a change rebuilds (pure: no file system, no git). A changed path selects
/// <list type="bullet">
/// <item>the image whose folder holds it (the deepest image folder above it: a file of base-a/tools belongs to
/// base-a/tools, not to base-a);</item>
/// <item>every image whose rendering loaded it as a template (the Jinja imports, <see cref="ImageDefinition.TemplateIncludes"/>);</item>
/// <item>every image whose COPY/ADD takes it from outside the image's folder (a file, a directory it is under, or a glob);</item>
/// </list>
/// and every selected image brings all its descendants. A deleted path selects the same way (a removed macro file
/// must rebuild, and fail, what includes it). The graph is the one at the new revision.
/// </summary>
public static class ChangeSelector
{
    public static ChangeSelection Select(IEnumerable<string> changedPaths, ImageGraph graph)
    {
        var folders = graph.Images.ToDictionary(i => i.Path, StringComparer.Ordinal);
        var byInclude = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var copies = new List<(string Image, CopySource Source)>();
        foreach (var image in graph.Images)
        {
            foreach (var include in image.TemplateIncludes)
            {
                if (!byInclude.TryGetValue(include, out var list))
                {
                    byInclude[include] = list = [];
                }

                list.Add(image.Path);
            }

            foreach (var source in CopySources(image))
            {
                copies.Add((image.Path, source));
            }
        }

        var direct = new Dictionary<string, List<ChangeReason>>(StringComparer.Ordinal);
        void Add(string image, ChangeReason reason)
        {
            if (!direct.TryGetValue(image, out var list))
            {
                direct[image] = list = [];
            }

            if (!list.Contains(reason))
            {
                list.Add(reason);
            }
        }

        var unmatched = new List<string>();
        foreach (var raw in changedPaths.Distinct(StringComparer.Ordinal))
        {
            var path = raw.Replace('\\', '/').Trim('/');
            if (path.Length == 0)
            {
                continue;
            }

            var matched = false;
            if (Owner(path, folders) is { } owner)
            {
                Add(owner, new ChangeReason(ChangeReasonKind.Folder, path));
                matched = true;
            }

            if (byInclude.TryGetValue(path, out var includers))
            {
                foreach (var i in includers)
                {
                    Add(i, new ChangeReason(ChangeReasonKind.Include, path));
                }

                matched = true;
            }

            foreach (var (image, source) in copies)
            {
                if (source.Matches(path))
                {
                    Add(image, new ChangeReason(ChangeReasonKind.Copy, path));
                    matched = true;
                }
            }

            if (!matched)
            {
                unmatched.Add(path);
            }
        }

        var selected = new HashSet<string>(direct.Keys, StringComparer.Ordinal);
        foreach (var image in direct.Keys)
        {
            selected.UnionWith(graph.Descendants(image));
        }

        var images = graph.TopologicalOrder(selected).Select(p =>
        {
            var reasons = direct.TryGetValue(p, out var r) ? (IReadOnlyList<ChangeReason>)[.. r.OrderBy(x => x.Kind).ThenBy(x => x.Path, StringComparer.Ordinal)] : [];
            var reason = reasons.Count > 0 ? reasons[0] : new ChangeReason(ChangeReasonKind.Parent, graph[p].ParentPath!);
            return new SelectedImage(p, reason, reasons);
        }).ToList();
        unmatched.Sort(StringComparer.Ordinal);
        return new ChangeSelection(images, unmatched);
    }

    /// <summary>The deepest image folder that holds <paramref name="path"/>, or null.</summary>
    internal static string? Owner(string path, IReadOnlyDictionary<string, ImageDefinition> folders)
    {
        for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
        {
            if (folders.ContainsKey(path[..slash]))
            {
                return path[..slash];
            }
        }

        return null;
    }

    /// <summary>The context sources of an image's COPY/ADD lines; a line that cannot be read gives none (its build fails on it).</summary>
    internal static IEnumerable<CopySource> CopySources(ImageDefinition image)
    {
        var sources = new List<CopySource>();
        foreach (var (instruction, args) in BuildInputs.Instructions(image.Dockerfile))
        {
            try
            {
                foreach (var s in BuildInputs.Sources(args, image.Folder.DockerfilePath, instruction))
                {
                    if (CopySource.Parse(s) is { } source)
                    {
                        sources.Add(source);
                    }
                }
            }
            catch (RepositoryException)
            {
                // A COPY the build will refuse: nothing to match against.
            }
        }

        return sources;
    }
}

/// <summary>One COPY source as a matcher of changed paths: the file itself, anything under it, or its glob.</summary>
internal sealed class CopySource
{
    private readonly string[] _segments;
    private readonly Regex?[] _globs;

    private CopySource(string text)
    {
        Text = text;
        _segments = text.Split('/');
        _globs = _segments.Select(s => s.IndexOfAny(['*', '?', '[']) < 0 ? null : Images.BuildInputs.Glob(s)).ToArray(); // a bad glob: RepositoryException
    }

    public string Text { get; }

    public static CopySource? Parse(string source)
    {
        var clean = source.Replace('\\', '/').TrimStart('/');
        while (clean.StartsWith("./", StringComparison.Ordinal))
        {
            clean = clean[2..];
        }

        clean = clean.TrimEnd('/');
        return clean.Length == 0 || clean == "." || clean.Split('/').Contains("..") ? null : new CopySource(clean);
    }

    /// <summary>True when <paramref name="path"/> is this source, or lies under it (a copied directory).</summary>
    public bool Matches(string path)
    {
        var parts = path.Split('/');
        if (parts.Length < _segments.Length)
        {
            return false;
        }

        for (var i = 0; i < _segments.Length; i++)
        {
            if (_globs[i] is { } glob ? !glob.IsMatch(parts[i]) : !string.Equals(parts[i], _segments[i], StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }
}
