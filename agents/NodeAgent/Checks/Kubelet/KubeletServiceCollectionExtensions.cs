using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Checks.Kubelet;

public static class KubeletServiceCollectionExtensions
{
    /// <summary>NodeAgent:Kubelet: kubelet.unit, kubelet.flapping, kubelet.healthz and kubelet.node-ready.</summary>
    public static IServiceCollection AddKubelet(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<KubeletOptions>(configuration, KubeletOptions.Section, (c, o) => c.Bind(o));
        services.AddHttpClient("kubelet");
        services.AddUnsupportedOffLinux(KubeletCheck.Unit);
        var o = OptionsRegistration.GetExactly<KubeletOptions>(configuration.GetSection(KubeletOptions.Section), (c, o) => c.Bind(o));
        if (o.Enabled)
        {
            services.AddHostedService(sp => ActivatorUtilities.CreateInstance<KubeletCheck>(sp, sp.GetRequiredService<ClusterView>()));
        }

        return services;
    }
}
