using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>One options type registered with <see cref="OptionsRegistration.AddValidatedOptions{T}"/>.</summary>
/// <param name="Section">Its section's path, e.g. "NodeAgent" or "Log".</param>
public sealed record ValidatedOptionsEntry(Type Type, string Section, Action<IServiceProvider> Resolve);

/// <summary>
/// The configuration as the admin wrote it: the program's file and its TOOLFORGE_ variables, and nothing the host adds
/// (ASP.NET Core's ASPNETCORE_ and DOTNET_ variables). Its top-level sections must all be ones the program knows.
/// </summary>
public sealed class OwnConfiguration(Func<IConfiguration> build)
{
    private readonly Lazy<IConfiguration> _root = new(build);

    public IConfiguration Root => _root.Value;
}
