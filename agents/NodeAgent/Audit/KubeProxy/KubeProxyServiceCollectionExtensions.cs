using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

public static class KubeProxyServiceCollectionExtensions
{
    /// <summary>NodeAgent:KubeProxy: which mode kube-proxy runs in, asked by both of its audits.</summary>
    public static IServiceCollection AddKubeProxy(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<KubeProxyOptions>(configuration, KubeProxyOptions.Section, (c, o) => c.Bind(o));
        services.AddHttpClient("kube-proxy");
        services.TryAddSingleton<ProxyModeDetector>();
        return services;
    }

    /// <summary>The configured mode (auto, iptables, nftables), read while wiring: a fixed mode leaves the other audit out.</summary>
    public static KubeProxyMode ConfiguredKubeProxyMode(this IConfiguration configuration) =>
        OptionsRegistration.GetExactly<KubeProxyOptions>(configuration.GetSection(KubeProxyOptions.Section), (c, o) => c.Bind(o)).Mode;
}
