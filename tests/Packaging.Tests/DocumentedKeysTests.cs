using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// The README names every configuration key a program takes, and every key a shipped example sets is one the program
/// takes: read from each program's build output (its options types), so neither can drift from the code.
/// </summary>
public sealed partial class DocumentedKeysTests
{
    private const string Marker = "Toolforge.Agents.Common.Options.IValidatedOptions";


    public static TheoryData<string, string> Daemons => new()
    {
        { "toolforge-coordinator", "coordinator.json.example" },
        { "toolforge-node-agent", "node-agent.json.example" },
        { "toolforge-builder-agent", "builder-agent.json.example" },
        { "toolforge-log-shipper", "log-shipper.json.example" },
    };

    [Theory]
    [MemberData(nameof(Daemons))]
    public void EveryKey_IsInTheReadme_AndEveryExampleKey_IsAKey(string program, string example)
    {
        var readme = File.ReadAllText(Path.Combine(Run.RepoRoot, "README.md"));
        using var loaded = new ProgramAssemblies(program);
        var assemblies = loaded.Both;
        var types = assemblies.SelectMany(a => a.GetTypes()).Where(t => t.IsClass && !t.IsAbstract && t.GetInterfaces().Any(i => i.FullName == Marker)).ToList();
        var keys = types.SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => (Type: t.Name, p.Name))).ToList();
        Assert.True(keys.Count > 10, $"{program}: only {keys.Count} keys found");
        var undocumented = keys.Where(k => !Regex.IsMatch(readme, $@"\b{k.Name}\b")).Select(k => $"{k.Type}.{k.Name}").Distinct().ToList();
        Assert.True(undocumented.Count == 0, $"{program}: keys the README never names:\n" + string.Join("\n", undocumented));

        var names = keys.Select(k => k.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);

        // A feature's own section (NodeAgent:Kubelet, bound by KubeletOptions) is a key of the file too.
        names.UnionWith(types.Select(t => t.GetField("Section", BindingFlags.Public | BindingFlags.Static)?.GetRawConstantValue() as string)
            .OfType<string>().Select(section => section.Split(':')[^1]));
        using var doc = JsonDocument.Parse(File.ReadAllText(BoundConfig.Example(example)), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var sections = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "Coordinator", "NodeAgent", "Builder", "Shipper", "Log", "Metrics" };
        var unknown = new List<string>();
        foreach (var top in doc.RootElement.EnumerateObject())
        {
            if (!sections.Contains(top.Name))
            {
                unknown.Add(top.Name);
            }

            Walk(top.Value, top.Name, names, unknown, mapValues: false);
        }

        Assert.True(unknown.Count == 0, $"{example}: keys {program} does not take:\n" + string.Join("\n", unknown));
    }

    // Object keys must be option names, except inside maps (Types, Credentials), whose keys are the admin's.
    private static void Walk(JsonElement e, string path, HashSet<string> names, List<string> unknown, bool mapValues)
    {
        if (e.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in e.EnumerateArray())
            {
                Walk(item, $"{path}:{i++}", names, unknown, mapValues: false);
            }
        }
        else if (e.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in e.EnumerateObject())
            {
                if (!mapValues && !names.Contains(p.Name))
                {
                    unknown.Add($"{path}:{p.Name}");
                }

                Walk(p.Value, $"{path}:{p.Name}", names, unknown, mapValues: !mapValues && p.Name is "Types" or "Credentials");
            }
        }
    }
}
