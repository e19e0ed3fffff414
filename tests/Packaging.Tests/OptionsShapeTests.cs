using System.Reflection;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// In a NativeAOT binary the unknown-key check can walk a nested options section only when its type implements
/// IValidatedOptions (whose annotation keeps its properties). Every program's options are read here, from its build
/// output, and every nested section type must do so.
/// </summary>
public sealed class OptionsShapeTests
{
    private const string Marker = "Toolforge.Agents.Common.Options.IValidatedOptions";


    [Theory]
    [MemberData(nameof(ProgramsTests.Programs), MemberType = typeof(ProgramsTests))]
    public void EveryNestedOptionsSection_ImplementsIValidatedOptions(string program)
    {
        using var loaded = new ProgramAssemblies(program);
        var assemblies = loaded.Both;
        var roots = assemblies.SelectMany(a => a.GetTypes()).Where(t => t.IsClass && !t.IsAbstract && IsOptions(t)).ToList();
        Assert.NotEmpty(roots);
        var problems = new List<string>();
        var seen = new HashSet<Type>();
        foreach (var root in roots)
        {
            Walk(root, problems, seen);
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static bool IsOptions(Type t) => t.GetInterfaces().Any(i => i.FullName == Marker);

    private static void Walk(Type type, List<string> problems, HashSet<Type> seen)
    {
        if (!seen.Add(type))
        {
            return;
        }

        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!ConfigurationShape.IsNestedSection(p.PropertyType))
            {
                continue;
            }

            if (!IsOptions(p.PropertyType))
            {
                problems.Add($"{type.FullName}.{p.Name}: {p.PropertyType.FullName} is a nested section that does not implement IValidatedOptions");
                continue;
            }

            Walk(p.PropertyType, problems, seen);
        }
    }
}
