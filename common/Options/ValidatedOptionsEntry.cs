using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>One options type registered with <see cref="OptionsRegistration.AddValidatedOptions{T}"/>.</summary>
/// <param name="Section">Its section's path, e.g. "NodeAgent" or "Log".</param>
/// <param name="Keys">The keys it takes in that section (its settable properties and its nested sections).</param>
public sealed record ValidatedOptionsEntry(Type Type, string Section, IReadOnlyCollection<string> Keys, Action<IServiceProvider> Resolve)
{
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
}
