using Docker.DotNet;
using Docker.DotNet.Models;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.NodeAgent.Checks;

namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

/// <summary>Pod containers as the Docker Engine has them (dockershim's labels): the image and the configured user.</summary>
internal sealed class DockerPodContainers(DockerOptions docker) : IPodContainerSource
{
    public TimeSpan Timeout => docker.ListTimeout * 2;

    public async Task<IReadOnlyList<PodContainer>> ListAsync(CancellationToken ct)
    {
        try
        {
            using var client = new DockerClientBuilder().WithEndpoint(new Uri(docker.Endpoint)).WithTimeout(docker.ListTimeout).Build();
            var list = await client.Containers.ListContainersAsync(new ContainersListParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [TenantPolicyCheck.NamespaceLabel] = true } },
            }, ct).ConfigureAwait(false);
            var containers = new List<PodContainer>();
            foreach (var c in list)
            {
                if (c.Labels.TryGetValue(TenantPolicyCheck.ContainerLabel, out var name) && name == "POD")
                {
                    continue; // the pause container
                }

                var inspected = await client.Containers.InspectContainerAsync(c.ID, ct).ConfigureAwait(false);
                containers.Add(new PodContainer(c.ID, c.Labels[TenantPolicyCheck.NamespaceLabel], c.Labels.TryGetValue(TenantPolicyCheck.PodLabel, out var pod) ? pod : "?",
                    name ?? "?", inspected.Config?.Image ?? c.Image, inspected.Config?.User ?? string.Empty, inspected.Image ?? string.Empty));
            }

            return containers;
        }
        catch (Exception ex) when (ex is HttpRequestException or System.Net.Sockets.SocketException or IOException or DockerApiException)
        {
            throw new PeerUnavailableException(DockerCheck.PeerName(docker.Endpoint),
                $"cannot list containers: {PeerErrors.Describe(ex, "Docker", "dockerd", docker.Endpoint).Message}", ex);
        }
    }
}
