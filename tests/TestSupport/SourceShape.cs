using System.Text.RegularExpressions;

namespace Toolforge.Agents.TestSupport;

/// <summary>
/// The shape every program keeps (README "Architecture"), read from its sources: its root namespace holds only what
/// every feature may use, and no feature folder reaches into the root while the root reaches into it.
/// </summary>
public static partial class SourceShape
{
    public sealed record Source(string Path, string? Namespace, IReadOnlyList<string> Usings, bool GlobalUsings, string Code)
    {
        /// <summary>A file as the check reads it: comments are no use of anything.</summary>
        public static Source Of(string path, string text)
        {
            var code = Comment().Replace(text, " ");
            var usings = Using().Matches(code).ToList();
            return new Source(path, NamespaceDeclaration().Match(code) is { Success: true } n ? n.Groups[1].Value : null,
                usings.Select(u => u.Groups[2].Value).ToList(), usings.Any(u => u.Groups[1].Success), code);
        }
    }

    /// <summary>One line per feature namespace that uses the root while the root uses it.</summary>
    public static List<string> Cycles(string root, IReadOnlyList<Source> sources)
    {
        var roots = sources.Where(s => s.Namespace == root).ToList();
        var globals = sources.Where(s => s.GlobalUsings).SelectMany(s => s.Usings).ToList();

        // What the root offers: its types and its extension methods (a feature sees them without a using).
        var offered = roots.SelectMany(s => TypeDeclaration().Matches(s.Code).Select(m => m.Groups[1].Value)
            .Concat(ExtensionMethod().Matches(s.Code).Select(m => m.Groups[1].Value))).ToHashSet(StringComparer.Ordinal);

        var lines = new List<string>();
        foreach (var feature in sources.Select(s => s.Namespace).OfType<string>().Where(n => n.StartsWith(root + ".", StringComparison.Ordinal)).Distinct().Order(StringComparer.Ordinal))
        {
            var rootUse = roots.FirstOrDefault(r => r.Usings.Concat(globals).Contains(feature) || r.Code.Contains(feature + ".", StringComparison.Ordinal));
            if (rootUse is null)
            {
                continue;
            }

            foreach (var s in sources.Where(s => s.Namespace == feature))
            {
                var used = s.Usings.Contains(root) ? [root] : offered.Where(name => Regex.IsMatch(s.Code, $@"\b{Regex.Escape(name)}\b")).Order(StringComparer.Ordinal).ToList();
                if (used.Count > 0)
                {
                    lines.Add($"{feature[(root.Length + 1)..]}: {s.Path} uses the root ({string.Join(", ", used)}); the root uses it in {rootUse.Path}");
                }
            }
        }

        return lines;
    }

    public static List<Source> Read(string project)
    {
        var sources = new List<Source>();
        foreach (var file in Directory.EnumerateFiles(project, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(project, file);
            if (relative.StartsWith("bin", StringComparison.Ordinal) || relative.StartsWith("obj", StringComparison.Ordinal))
            {
                continue;
            }

            sources.Add(Source.Of(relative, File.ReadAllText(file)));
        }

        return sources;
    }

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comment();

    [GeneratedRegex(@"^\s*(global\s+)?using\s+(?:static\s+)?(?:\w+\s*=\s*)?([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex Using();

    [GeneratedRegex(@"^\s*namespace\s+([\w.]+)", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();

    [GeneratedRegex(@"\b(?:class|record|struct|interface|enum)\s+(\w+)")]
    private static partial Regex TypeDeclaration();

    [GeneratedRegex(@"\bstatic\s+[\w<>\[\]?,. ]+?\s+(\w+)\s*(?:<[^>]*>)?\(\s*this\s")]
    private static partial Regex ExtensionMethod();
}
