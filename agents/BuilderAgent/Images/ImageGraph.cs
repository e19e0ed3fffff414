namespace Toolforge.Agents.BuilderAgent.Images;

/// <summary>
/// Images linked to their parents. Selection follows build.py: for a path, its ancestors (root first), itself and
/// all its descendants, parents always before children; siblings are not included.
/// </summary>
public sealed class ImageGraph
{
    private readonly Dictionary<string, ImageDefinition> _byPath;
    private readonly Dictionary<string, List<string>> _children;

    public ImageGraph(string root, IReadOnlyList<ImageDefinition> images)
    {
        Root = root;
        Images = images;
        _byPath = images.ToDictionary(i => i.Path, StringComparer.Ordinal);
        _children = images.ToDictionary(i => i.Path, _ => new List<string>(), StringComparer.Ordinal);
        foreach (var i in images)
        {
            if (i.ParentPath is not null)
            {
                _children[i.ParentPath].Add(i.Path);
            }
        }

        foreach (var list in _children.Values)
        {
            list.Sort(StringComparer.Ordinal);
        }

        // A cycle: some image whose parent chain never reaches an external base.
        foreach (var i in images)
        {
            var seen = new List<string>();
            for (var p = i.Path; p is not null; p = _byPath[p].ParentPath)
            {
                if (seen.Contains(p, StringComparer.Ordinal))
                {
                    var cycle = seen.SkipWhile(s => s != p).Append(p);
                    throw new RepositoryException($"{Path.Combine(root, _byPath[p].Folder.DockerfilePath)}: FROM makes a cycle: {string.Join(" -> ", cycle)}");
                }

                seen.Add(p);
            }
        }
    }

    public string Root { get; }

    public IReadOnlyList<ImageDefinition> Images { get; }

    public ImageDefinition this[string path] => _byPath[path];

    public IReadOnlyList<string> Children(string path) => _children[path];

    public IEnumerable<string> Roots => Images.Where(i => i.ParentPath is null).Select(i => i.Path);

    public IReadOnlyList<string> Ancestors(string path)
    {
        var chain = new List<string>();
        for (var p = _byPath[path].ParentPath; p is not null; p = _byPath[p].ParentPath)
        {
            chain.Add(p);
        }

        chain.Reverse();
        return chain;
    }

    /// <summary>Every image built from <paramref name="path"/>, parents before children (depth first, by name).</summary>
    public IReadOnlyList<string> Descendants(string path)
    {
        var result = new List<string>();
        var stack = new Stack<string>(_children[path].AsEnumerable().Reverse());
        while (stack.Count > 0)
        {
            var p = stack.Pop();
            result.Add(p);
            foreach (var c in _children[p].AsEnumerable().Reverse())
            {
                stack.Push(c);
            }
        }

        return result;
    }

    /// <summary>build.py's selection for the given paths, merged, each image once, parents before children.</summary>
    public IReadOnlyList<string> Select(IEnumerable<string> paths, bool single)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in paths)
        {
            if (!_byPath.ContainsKey(p))
            {
                throw new RepositoryException($"no image \"{p}\" in {Root}");
            }

            wanted.Add(p);
            if (!single)
            {
                wanted.UnionWith(Ancestors(p));
                wanted.UnionWith(Descendants(p));
            }
        }

        return TopologicalOrder(wanted);
    }

    /// <summary>The lineage of a series root: the root and everything built from it.</summary>
    public IReadOnlyList<string> Lineage(string root) => [root, .. Descendants(root)];

    /// <summary>Orders a set so each image comes after its parent (depth first from the roots, by name).</summary>
    public IReadOnlyList<string> TopologicalOrder(IReadOnlySet<string> set)
    {
        var order = new List<string>();
        foreach (var r in Roots.Order(StringComparer.Ordinal))
        {
            foreach (var p in (IEnumerable<string>)[r, .. Descendants(r)])
            {
                if (set.Contains(p))
                {
                    order.Add(p);
                }
            }
        }

        return order;
    }

    public int Depth(string path) => Ancestors(path).Count;
}
