using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Checks.Docker;

namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

/// <summary>Pod containers as the Docker Engine has them (dockershim's labels): the image and the configured user.</summary>
internal sealed class DockerPodContainers(DockerOptions docker) : IPodContainerSource
{
    public TimeSpan Timeout => docker.ListTimeout * 2;

    public async Task<IReadOnlyList<PodContainer>> ListAsync(CancellationToken ct)
    {
        try
        {
            using var client = new DockerEngine(docker.Endpoint);
            var list = await client.ListContainersAsync(all: false, TenantPolicyCheck.NamespaceLabel, docker.ListTimeout, ct).ConfigureAwait(false);
            var containers = new List<PodContainer>();
            foreach (var c in list)
            {
                var labels = c.Labels ?? [];
                if (!labels.TryGetValue(TenantPolicyCheck.NamespaceLabel, out var ns))
                {
                    continue; // the filter asked for the label; a container without it is not a pod's
                }

                if (labels.TryGetValue(TenantPolicyCheck.ContainerLabel, out var name) && name == "POD")
                {
                    continue; // the pause container
                }

                var inspected = await client.InspectContainerAsync(c.Id, docker.ListTimeout, ct).ConfigureAwait(false);
                containers.Add(new PodContainer(c.Id, ns, labels.TryGetValue(TenantPolicyCheck.PodLabel, out var pod) ? pod : "?",
                    name ?? "?", inspected.Config?.Image ?? c.Image ?? string.Empty, inspected.Config?.User ?? string.Empty, inspected.Image ?? string.Empty));
            }

            return containers;
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new PeerUnavailableException(DockerCheck.PeerName(docker.Endpoint),
                $"cannot list containers: Docker at {docker.Endpoint} did not answer within {docker.ListTimeout.TotalSeconds:0.#}s", ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or System.Net.Sockets.SocketException or IOException or DockerApiException or System.Text.Json.JsonException)
        {
            throw new PeerUnavailableException(DockerCheck.PeerName(docker.Endpoint),
                $"cannot list containers: {PeerErrors.Describe(ex, "Docker", "dockerd", docker.Endpoint).Message}", ex);
        }
    }
}
