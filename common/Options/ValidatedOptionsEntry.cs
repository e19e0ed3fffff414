using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

/// <summary>One options type registered with <see cref="OptionsRegistration.AddValidatedOptions{T}"/>.</summary>
public sealed record ValidatedOptionsEntry(Type Type, Action<IServiceProvider> Resolve);
