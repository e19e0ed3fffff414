using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Promotion;

public static class PromotionServiceCollectionExtensions
{
    /// <summary>Builder:Promotion: the verify probes, the registry deadline and the verdict file of `verify` and `promote`.</summary>
    public static IServiceCollection AddPromotion(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<PromotionOptions>(configuration, PromotionOptions.Section, (c, o) => c.Bind(o));
        services.TryAddSingleton<PostPushVerifier>();
        return services;
    }
}
