using System.Reflection;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>
/// The node-agent's shape (README "Architecture"): the root namespace holds only what every feature may use (EventIds,
/// NodeOptions); a feature folder never reaches into the root while the root reaches into it; and no feature reads
/// the whole agent's options, only its own (and NodeOptions). Read from the sources under agents/NodeAgent.
/// </summary>
public sealed class ShapeTests
{
    private const string Root = "Toolforge.Agents.NodeAgent";

    [Fact]
    public void TheRoot_AndAFeature_NeverUseEachOther()
    {
        var sources = SourceShape.Read(Path.Combine(Run.RepoRoot, "agents", "NodeAgent"));
        Assert.Contains(sources, s => s.Namespace == Root);
        Assert.True(sources.Count(s => s.Namespace?.StartsWith(Root + ".", StringComparison.Ordinal) == true) > 50, "the feature folders were not found");
        var cycles = SourceShape.Cycles(Root, sources);
        Assert.True(cycles.Count == 0, "the root and these features use each other (move what both need into the root, or what the root needs out of it):\n" + string.Join("\n", cycles));
    }

    [Fact]
    public void TheCheck_FindsARootThatUsesAFeatureThatUsesTheRoot()
    {
        // The check itself, on made-up sources: a root file that imports a feature which names a root type.
        var root = SourceShape.Source.Of("Wiring.cs", $"using {Root}.Audit.Iptables;\nnamespace {Root};\nclass Wiring {{ }}");
        var feature = SourceShape.Source.Of("Audit/Iptables/X.cs", $"namespace {Root}.Audit.Iptables;\nclass X {{ Wiring w; }}");
        var fine = SourceShape.Source.Of("Audit/Iptables/Y.cs", $"namespace {Root}.Audit.Iptables;\nclass Y {{ }} // Wiring in a comment is no use");
        Assert.Equal(["Audit.Iptables: Audit/Iptables/X.cs uses the root (Wiring); the root uses it in Wiring.cs"], SourceShape.Cycles(Root, [root, feature]));
        Assert.Empty(SourceShape.Cycles(Root, [root, fine]));

        // An extension method of the root counts as a use, as does a global using of the feature.
        var extension = SourceShape.Source.Of("Ext.cs", $"namespace {Root};\nstatic class Ext {{ public static int Count(this string s) => 0; }}");
        var globalUse = SourceShape.Source.Of("Usings.cs", $"global using {Root}.Journal;");
        var journal = SourceShape.Source.Of("Journal/J.cs", $"namespace {Root}.Journal;\nclass J {{ int n = \"x\".Count(); }}");
        Assert.Single(SourceShape.Cycles(Root, [extension, globalUse, journal]));
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

        var sources = SourceShape.Read(Path.Combine(Run.RepoRoot, "agents", "NodeAgent"));
        var whole = sources.Where(s => s.Code.Contains("IOptions<NodeAgentOptions>", StringComparison.Ordinal)).Select(s => s.Path).ToList();
        Assert.True(whole.Count == 0, "IOptions<NodeAgentOptions> in: " + string.Join(", ", whole));
    }

    private static string? SectionOf(Type t) =>
        t.GetField("Section", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } f ? f.GetRawConstantValue() as string : null;
}
