using System.Reflection;
using System.Text.RegularExpressions;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The node-agent's shape (README "Architecture"): the root namespace holds only what every feature may use (EventIds,
/// NodeOptions); a feature folder never reaches into the root while the root reaches into it; and no feature reads
/// the whole agent's options, only its own (and NodeOptions). Read from the sources under agents/NodeAgent.
/// </summary>
public sealed partial class ShapeTests
{
    private const string Root = "Toolforge.Agents.NodeAgent";

    private sealed record Source(string Path, string? Namespace, IReadOnlyList<string> Usings, bool GlobalUsings, string Code)
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

    [Fact]
    public void TheRoot_AndAFeature_NeverUseEachOther()
    {
        var sources = Read(Path.Combine(Run.RepoRoot, "agents", "NodeAgent"));
        Assert.Contains(sources, s => s.Namespace == Root);
        Assert.True(sources.Count(s => s.Namespace?.StartsWith(Root + ".", StringComparison.Ordinal) == true) > 50, "the feature folders were not found");
        var cycles = Cycles(sources);
        Assert.True(cycles.Count == 0, "the root and these features use each other (move what both need into the root, or what the root needs out of it):\n" + string.Join("\n", cycles));
    }

    [Fact]
    public void TheCheck_FindsARootThatUsesAFeatureThatUsesTheRoot()
    {
        // The check itself, on made-up sources: a root file that imports a feature which names a root type.
        var root = Source.Of("Wiring.cs", $"using {Root}.Audit.Iptables;\nnamespace {Root};\nclass Wiring {{ }}");
        var feature = Source.Of("Audit/Iptables/X.cs", $"namespace {Root}.Audit.Iptables;\nclass X {{ Wiring w; }}");
        var fine = Source.Of("Audit/Iptables/Y.cs", $"namespace {Root}.Audit.Iptables;\nclass Y {{ }} // Wiring in a comment is no use");
        Assert.Equal(["Audit.Iptables: Audit/Iptables/X.cs uses the root (Wiring); the root uses it in Wiring.cs"], Cycles([root, feature]));
        Assert.Empty(Cycles([root, fine]));

        // An extension method of the root counts as a use, as does a global using of the feature.
        var extension = Source.Of("Ext.cs", $"namespace {Root};\nstatic class Ext {{ public static int Count(this string s) => 0; }}");
        var globalUse = Source.Of("Usings.cs", $"global using {Root}.Journal;");
        var journal = Source.Of("Journal/J.cs", $"namespace {Root}.Journal;\nclass J {{ int n = \"x\".Count(); }}");
        Assert.Single(Cycles([extension, globalUse, journal]));
    }

    [Fact]
    public void NoFeature_ReadsTheWholeAgentsOptions()
    {
        // No options type that binds a section of its own holds another such type (an options type for the whole agent
        // again, as NodeAgentOptions was), and no source injects one.
        var assembly = typeof(NodeOptions).Assembly;
        var sectioned = assembly.GetTypes().Where(t => typeof(IValidatedOptions).IsAssignableFrom(t) && SectionOf(t) is not null).ToList();
        Assert.Contains(sectioned, t => t.Name == "NftablesOptions");
        var aggregates = sectioned.SelectMany(t => t.GetProperties().Where(p => SectionOf(p.PropertyType) is not null)
            .Select(p => $"{t.Name}.{p.Name} ({SectionOf(t)} holds {SectionOf(p.PropertyType)}: bind it on its own, inject IOptions<{p.PropertyType.Name}>)")).ToList();
        Assert.True(aggregates.Count == 0, string.Join("\n", aggregates));

        var sources = Read(Path.Combine(Run.RepoRoot, "agents", "NodeAgent"));
        var whole = sources.Where(s => s.Code.Contains("IOptions<NodeAgentOptions>", StringComparison.Ordinal)).Select(s => s.Path).ToList();
        Assert.True(whole.Count == 0, "IOptions<NodeAgentOptions> in: " + string.Join(", ", whole));
    }

    private static string? SectionOf(Type t) =>
        t.GetField("Section", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } f ? f.GetRawConstantValue() as string : null;

    /// <summary>One line per feature namespace that uses the root while the root uses it.</summary>
    private static List<string> Cycles(IReadOnlyList<Source> sources)
    {
        var roots = sources.Where(s => s.Namespace == Root).ToList();
        var globals = sources.Where(s => s.GlobalUsings).SelectMany(s => s.Usings).ToList();

        // What the root offers: its types and its extension methods (a feature sees them without a using).
        var offered = roots.SelectMany(s => TypeDeclaration().Matches(s.Code).Select(m => m.Groups[1].Value)
            .Concat(ExtensionMethod().Matches(s.Code).Select(m => m.Groups[1].Value))).ToHashSet(StringComparer.Ordinal);

        var lines = new List<string>();
        foreach (var feature in sources.Select(s => s.Namespace).OfType<string>().Where(n => n.StartsWith(Root + ".", StringComparison.Ordinal)).Distinct().Order(StringComparer.Ordinal))
        {
            var rootUse = roots.FirstOrDefault(r => r.Usings.Concat(globals).Contains(feature) || r.Code.Contains(feature + ".", StringComparison.Ordinal));
            if (rootUse is null)
            {
                continue;
            }

            foreach (var s in sources.Where(s => s.Namespace == feature))
            {
                var used = s.Usings.Contains(Root) ? [Root] : offered.Where(name => Regex.IsMatch(s.Code, $@"\b{Regex.Escape(name)}\b")).Order(StringComparer.Ordinal).ToList();
                if (used.Count > 0)
                {
                    lines.Add($"{feature[(Root.Length + 1)..]}: {s.Path} uses the root ({string.Join(", ", used)}); the root uses it in {rootUse.Path}");
                }
            }
        }

        return lines;
    }

    private static List<Source> Read(string project)
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
