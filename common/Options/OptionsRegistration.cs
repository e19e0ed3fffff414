using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Toolforge.Agents.Common.Options;

public static class OptionsRegistration
{
    /// <summary>
    /// Binds <typeparamref name="T"/> to <paramref name="section"/>, rejects unknown keys (a typo from puppet is an
    /// error, not a silently ignored setting) and validates it when the host starts. <paramref name="bind"/> is the
    /// caller's <c>(c, o) =&gt; c.Bind(o)</c>: written where <typeparamref name="T"/> is a concrete type, so the
    /// configuration-binding source generator makes the binding code (no reflection in a NativeAOT binary).
    /// </summary>
    public static OptionsBuilder<T> AddValidatedOptions<[DynamicallyAccessedMembers(Kept)] T>(
        this IServiceCollection services, IConfiguration configuration, string section, Action<IConfiguration, T> bind)
        where T : class, IValidatedOptions
    {
        var configSection = configuration.GetSection(section);
        // A feature's own section below another options type's (NodeAgent:Nftables below NodeAgent), and the keys of
        // another type bound at the same section, are that type's to check: this one does not call them unknown.
        services.AddSingleton<IValidateOptions<T>>(sp => new SelfValidatingOptions<T>(configSection,
            ValidatedOptionsEntry.OwnedElsewhere(sp.GetServices<ValidatedOptionsEntry>(), typeof(T), section)));
        services.AddSingleton(new ValidatedOptionsEntry(typeof(T), section, ConfigurationShape.KeysOf(typeof(T)), sp => _ = sp.GetRequiredService<IOptions<T>>().Value,
            (root, owned) =>
            {
                var fresh = root.GetSection(section);
                try
                {
                    var o = Activator.CreateInstance<T>();
                    BindExactly(fresh, o, bind);
                    return [.. ConfigurationShape.Problems(fresh, o, owned), .. o.Validate(section)];
                }
                catch (InvalidOperationException ex) when (ConfigurationValues.DescribeConversion(ex) is { } conversion)
                {
                    return [conversion];
                }
            }));
        services.AddSingleton<IOptionsChangeTokenSource<T>>(new ConfigurationChangeTokenSource<T>(Microsoft.Extensions.Options.Options.DefaultName, configSection));
        return services.AddOptions<T>()
            .Configure(o => BindExactly(configSection, o, bind))
            .ValidateOnStart();
    }

    /// <summary>
    /// Binds as written: lists and maps the section names replace the defaults (see <see cref="ConfigurationShape"/>).
    /// Every binding of an options type goes through here (the daemons' options, the eager reads a host's wiring
    /// makes, a reload).
    /// </summary>
    public static void BindExactly<T>(IConfiguration section, T options, Action<IConfiguration, T> bind)
        where T : class, IValidatedOptions
    {
        ConfigurationShape.ClearNamedCollections(section, options);
        bind(section, options);
    }

    /// <summary>A fresh <typeparamref name="T"/> bound exactly as <paramref name="section"/> says (its defaults where it is silent).</summary>
    public static T GetExactly<T>(IConfiguration section, Action<IConfiguration, T> bind)
        where T : class, IValidatedOptions, new()
    {
        var options = new T();
        BindExactly(section, options, bind);
        return options;
    }

    private const DynamicallyAccessedMemberTypes Kept = DynamicallyAccessedMemberTypes.PublicParameterlessConstructor | DynamicallyAccessedMemberTypes.PublicProperties;
}
