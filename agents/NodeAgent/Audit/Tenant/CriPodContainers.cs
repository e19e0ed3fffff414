using System.Text.Json;
using Grpc.Core;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Cri.V1;

namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

/// <summary>
/// Pod containers over CRI: every running container of a ready sandbox, its pod from the sandbox's labels
/// (io.kubernetes.pod.namespace/name), the image as the pod asked for it and its digest, and the user it actually runs
/// as — from the verbose ContainerStatus (info.runtimeSpec.process.user.uid), since containerd 1.6 leaves
/// ContainerStatus.user empty; where a newer runtime fills ContainerStatus.user, that is used.
/// </summary>
internal sealed class CriPodContainers(CriOptions cri) : IPodContainerSource
{
    public const string ImageNameAnnotation = "io.kubernetes.cri.image-name";

    public TimeSpan Timeout => cri.ListTimeout * 4;

    public async Task<IReadOnlyList<PodContainer>> ListAsync(CancellationToken ct)
    {
        using var client = new CriClient(cri.Endpoint, cri.CallTimeout);
        var stage = "ListPodSandbox";
        try
        {
            var sandboxes = (await client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest
            {
                Filter = new PodSandboxFilter { State = new PodSandboxStateValue { State = PodSandboxState.SandboxReady } },
            }, deadline: Deadline(), cancellationToken: ct).ConfigureAwait(false)).Items.ToDictionary(s => s.Id, StringComparer.Ordinal);
            stage = "ListContainers";
            var running = await client.Runtime.ListContainersAsync(new ListContainersRequest
            {
                Filter = new ContainerFilter { State = new ContainerStateValue { State = ContainerState.ContainerRunning } },
            }, deadline: Deadline(), cancellationToken: ct).ConfigureAwait(false);
            var result = new List<PodContainer>();
            stage = "ContainerStatus";
            foreach (var c in running.Containers)
            {
                if (!sandboxes.TryGetValue(c.PodSandboxId, out var sandbox))
                {
                    continue; // its sandbox is not ready (being torn down)
                }

                var ns = sandbox.Labels.GetValueOrDefault(TenantPolicyCheck.NamespaceLabel) ?? sandbox.Metadata?.Namespace ?? "?";
                var pod = sandbox.Labels.GetValueOrDefault(TenantPolicyCheck.PodLabel) ?? sandbox.Metadata?.Name ?? "?";
                var image = c.Annotations.GetValueOrDefault(ImageNameAnnotation) is { Length: > 0 } asked ? asked
                    : c.Image?.UserSpecifiedImage is { Length: > 0 } specified ? specified
                    : c.Image?.Image ?? string.Empty;
                var status = await client.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = c.Id, Verbose = true },
                    deadline: Deadline(), cancellationToken: ct).ConfigureAwait(false);
                var (uid, problem) = UserOf(status);
                result.Add(new PodContainer(c.Id, ns, pod, c.Metadata?.Name ?? "?", image, uid?.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    c.ImageRef, problem));
            }

            return result;
        }
        catch (RpcException ex) when (!ct.IsCancellationRequested)
        {
            throw new PeerUnavailableException(CriRuntimeCheck.PeerName(cri),
                $"cannot list pod containers: {CriProbe.Describe(ex, cri.Name, cri.Endpoint, stage, cri.ListTimeout)}", ex);
        }
    }

    /// <summary>The UID the container's process runs as, or why it cannot be told (pure: a test gives it a status).</summary>
    public static (long? Uid, string? Problem) UserOf(ContainerStatusResponse status)
    {
        if (status.Status?.User?.Linux is { } linux)
        {
            return (linux.Uid, null);
        }

        if (!status.Info.TryGetValue("info", out var info))
        {
            return (null, "the runtime gave neither ContainerStatus.user nor a verbose info with the runtime spec");
        }

        try
        {
            using var doc = JsonDocument.Parse(info);
            if (doc.RootElement.TryGetProperty("runtimeSpec", out var spec) && spec.TryGetProperty("process", out var process)
                && process.TryGetProperty("user", out var user) && user.TryGetProperty("uid", out var uid) && uid.TryGetInt64(out var value))
            {
                return (value, null);
            }

            return (null, "the runtime spec in the verbose info has no process.user.uid");
        }
        catch (JsonException ex)
        {
            return (null, $"the verbose info is not JSON: {ex.Message}");
        }
    }

    private DateTime Deadline() => DateTime.UtcNow.Add(cri.ListTimeout);
}
