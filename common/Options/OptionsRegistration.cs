using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

public static class OptionsRegistration
{
    /// <summary>
    /// Binds <typeparamref name="T"/> to <paramref name="section"/>, rejects unknown keys (a typo from puppet is an
    /// error, not a silently ignored setting) and validates it when the host starts.
    /// </summary>
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, IConfiguration configuration, string section)
        where T : class, IValidatedOptions
    {
        var configSection = configuration.GetSection(section);
        services.AddSingleton<IValidateOptions<T>>(new SelfValidatingOptions<T>(configSection));
        services.AddSingleton(new ValidatedOptionsEntry(typeof(T), sp => _ = sp.GetRequiredService<IOptions<T>>().Value));
        return services.AddOptions<T>()
            .Bind(configSection)
            .ValidateOnStart();
    }
}
