using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.NodeAgent.Checks.Docker;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Checks.Images;

public static class NodeImagesServiceCollectionExtensions
{
    /// <summary>NodeAgent:Images: node.images, the images the chosen runtime holds (CRI first when both), sent with the reports.</summary>
    public static IServiceCollection AddNodeImages(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<NodeImagesOptions>(configuration, NodeImagesOptions.Section, (c, o) => c.Bind(o));
        var o = OptionsRegistration.GetExactly<NodeImagesOptions>(configuration.GetSection(NodeImagesOptions.Section), (c, o) => c.Bind(o));
        var choice = services.RuntimeChoice(configuration);
        if (o.Enabled && (choice.Cri || choice.Docker))
        {
            services.AddHostedService(sp => new NodeImagesCheck(sp.GetRequiredService<IOptions<NodeImagesOptions>>(),
                choice.Cri ? sp.GetRequiredService<IOptions<CriOptions>>().Value : null,
                choice.Cri ? null : sp.GetRequiredService<IOptions<DockerOptions>>().Value,
                sp.GetRequiredService<AgentState>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<NodeImagesCheck>>(), Pods(sp)));
        }

        return services;
    }

    // The pods bound to this node, when the cluster view reads the Kubernetes API (not a snapshot file, not off).
    private static NodeImagesCheck.NodePods? Pods(IServiceProvider sp)
    {
        var kube = sp.GetService<IOptions<KubernetesOptions>>()?.Value;
        return kube is { Enabled: true, Source: ClusterSource.Api } && sp.GetService<ClusterView>() is { } view && sp.GetService<KubeClient>() is { } client
            ? new NodeImagesCheck.NodePods(client, kube.Kubeconfig, view.NodeName)
            : null;
    }
}
