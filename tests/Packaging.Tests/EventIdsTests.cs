using System.Reflection;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Packaging.Tests;

/// <summary>
/// An admin greps the journal by event id: within a program (its own code and common's) no id is used twice, and each
/// is in the program's range (README: 1000–1999 common, 2000–2999 coordinator, 3000–3999 node-agent, 4000–4999
/// builder-agent, 5000–5999 log-shipper). Read from each program's build output, as OptionsShapeTests does.
/// </summary>
public sealed class EventIdsTests
{
    private static readonly Dictionary<string, (int Min, int Max)> Ranges = new()
    {
        ["toolforge-coordinator"] = (2000, 2999),
        ["toolforge-node-agent"] = (3000, 3999),
        ["toolforge-builder-agent"] = (4000, 4999),
        ["toolforge-log-shipper"] = (5000, 5999),
    };


    public static TheoryData<string> Daemons => new() { "toolforge-coordinator", "toolforge-node-agent", "toolforge-builder-agent", "toolforge-log-shipper" };

    [Theory]
    [MemberData(nameof(Daemons))]
    public void EveryEventId_IsUsedOnce_AndInItsProgramsRange(string program)
    {
        using var loaded = new ProgramAssemblies(program);
        var own = loaded.Own;
        var common = loaded.Common;
        var ids = new List<(int Id, string Where, bool Common)>();
        foreach (var (assembly, isCommon) in new[] { (own, false), (common, true) })
        {
            foreach (var type in assembly.GetTypes())
            {
                foreach (var m in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly))
                {
                    foreach (var a in m.GetCustomAttributesData().Where(a => a.AttributeType.FullName == "Microsoft.Extensions.Logging.LoggerMessageAttribute"))
                    {
                        var id = a.ConstructorArguments.Count > 0 && a.ConstructorArguments[0].Value is int i ? i
                            : a.NamedArguments.FirstOrDefault(n => n.MemberName == "EventId").TypedValue.Value is int j ? j : -1;
                        ids.Add((id, $"{type.FullName}.{m.Name}", isCommon));
                    }
                }
            }
        }

        Assert.True(ids.Count > 10, $"only {ids.Count} log methods found in {program}");
        var twice = ids.GroupBy(i => i.Id).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(x => x.Where))}").ToList();
        Assert.True(twice.Count == 0, "event ids used twice:\n" + string.Join("\n", twice));
        var (min, max) = Ranges[program];
        var outside = ids.Where(i => i.Common ? i.Id is < 1000 or > 1999 : i.Id < min || i.Id > max).Select(i => $"{i.Id}: {i.Where}").ToList();
        Assert.True(outside.Count == 0, $"event ids outside {program}'s range {min}-{max} (common: 1000-1999):\n" + string.Join("\n", outside));
    }
}
