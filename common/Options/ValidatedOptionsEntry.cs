using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>One options type registered with <see cref="OptionsRegistration.AddValidatedOptions{T}"/>.</summary>
/// <param name="Section">Its section's path, e.g. "NodeAgent" or "Log".</param>
/// <param name="Keys">The keys it takes in that section (its settable properties and its nested sections).</param>
/// <param name="Check">The problems a configuration root has for it, bound fresh as at start (given what other types own).</param>
public sealed record ValidatedOptionsEntry(Type Type, string Section, IReadOnlyCollection<string> Keys, Action<IServiceProvider> Resolve,
    Func<IConfiguration, IReadOnlyCollection<string>, IReadOnlyList<string>> Check)
{
    /// <summary>
    /// Every problem <paramref name="root"/> has for the program whose options are <paramref name="entries"/>, as its
    /// start would find them (unknown sections, unknown keys, wrong kinds, values): what a reload checks before it
    /// takes anything from a file, so a file the next start would refuse is refused now.
    /// </summary>
    public static List<string> ProblemsOf(IConfiguration root, IReadOnlyCollection<ValidatedOptionsEntry> entries)
    {
        var sections = entries.Select(e => e.Section.Split(':')[0]).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var problems = ConfigurationShape.UnknownSections(root, sections).ToList();
        foreach (var e in entries)
        {
            problems.AddRange(e.Check(root, OwnedElsewhere(entries, e.Type, e.Section)));
        }

        return problems;
    }

    /// <summary>
    /// What the options type <paramref name="self"/> bound at <paramref name="section"/> passes over as another type's:
    /// the sections other types bind (a feature's section below it, NodeAgent:Nftables below NodeAgent), and the keys
    /// of the types that share its very section (the coordinator's features each take their keys of "Coordinator").
    /// </summary>
    public static IReadOnlyCollection<string> OwnedElsewhere(IEnumerable<ValidatedOptionsEntry> entries, Type self, string section)
    {
        var owned = new List<string>();
        foreach (var e in entries)
        {
            if (!string.Equals(e.Section, section, StringComparison.OrdinalIgnoreCase))
            {
                owned.Add(e.Section);
            }
            else if (e.Type != self)
            {
                owned.AddRange(e.Keys.Select(k => $"{section}:{k}"));
            }
        }

        return owned;
    }
}

/// <summary>
/// The configuration as the admin wrote it: the program's file and its TOOLFORGE_ variables, and nothing the host adds
/// (ASP.NET Core's ASPNETCORE_ and DOTNET_ variables). Its top-level sections must all be ones the program knows.
/// </summary>
public sealed class OwnConfiguration(Func<IConfiguration> build)
{
    private readonly Lazy<IConfiguration> _root = new(build);

    public IConfiguration Root => _root.Value;

    /// <summary>The file and the variables read again now (a reload's check).</summary>
    public IConfiguration ReadAgain() => build();
}
