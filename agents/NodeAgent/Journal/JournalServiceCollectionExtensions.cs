using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Journal;

public static class JournalServiceCollectionExtensions
{
    /// <summary>NodeAgent:Journal: the journal rules, each a check journal.NAME.</summary>
    public static IServiceCollection AddJournalRules(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<JournalOptions>(configuration, JournalOptions.Section, (c, o) => c.Bind(o));
        var o = OptionsRegistration.GetExactly<JournalOptions>(configuration.GetSection(JournalOptions.Section), (c, o) => c.Bind(o));
        if (o.Enabled)
        {
            services.AddHostedService<JournalRulesService>();
        }

        return services;
    }
}
