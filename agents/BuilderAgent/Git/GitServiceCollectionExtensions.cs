using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Git;

public static class GitServiceCollectionExtensions
{
    /// <summary>Builder:Git: when PollInterval is set, the daemon fetches the image repository and builds what the new commits changed.</summary>
    public static IServiceCollection AddGitPolling(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<GitOptions>(configuration, GitOptions.Section, (c, o) => c.Bind(o));
        services.TryAddSingleton<BuildLane>();
        var o = OptionsRegistration.GetExactly<GitOptions>(configuration.GetSection(GitOptions.Section), (c, o) => c.Bind(o));
        if (o.Polling)
        {
            services.AddHostedService<GitPollService>();
        }

        return services;
    }
}
