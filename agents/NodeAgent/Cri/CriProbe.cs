using System.Diagnostics;
using Grpc.Core;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.NodeAgent.Cri.V1;

namespace Toolforge.Agents.NodeAgent.Cri;

/// <summary>How a CRI runtime answered.</summary>
public enum CriCondition
{
    Healthy,

    /// <summary>RuntimeReady, but NetworkReady false (the CNI is not ready): host-network pods only.</summary>
    Degraded,

    /// <summary>Nothing there: the socket is missing (stopped), or it refuses connections (died, socket left behind).</summary>
    Down,

    /// <summary>Accepts connections, does not answer within the deadline.</summary>
    Hung,

    /// <summary>Answers gRPC, but not runtime.v1.RuntimeService: containerd's CRI plugin is disabled or failed to load.</summary>
    NotCri,

    /// <summary>Answers, but RuntimeReady is false, or a call failed otherwise.</summary>
    Failing,
}

/// <summary>What one probe saw: the condition, one line for an admin, and the counts.</summary>
public sealed record CriProbeResult(CriCondition Condition, string Message, TimeSpan Latency, IReadOnlyDictionary<string, double> Counts, string? Version);

/// <summary>
/// Version, Status, ListPodSandbox, ListContainers, each with its own deadline, so that down, hung, not-a-CRI-runtime
/// and degraded read differently. RPCs newer than the runtime (UNIMPLEMENTED on anything but Version) are not "down".
/// </summary>
internal static class CriProbe
{
    public static async Task<CriProbeResult> RunAsync(CriClient client, string name, TimeSpan callTimeout, TimeSpan listTimeout, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var stage = "Version";
        var counts = new Dictionary<string, double>();
        try
        {
            var version = await client.Runtime.VersionAsync(new VersionRequest { Version = "v1" }, deadline: Deadline(callTimeout), cancellationToken: ct).ConfigureAwait(false);
            var versionText = $"{version.RuntimeName} {version.RuntimeVersion} (CRI {version.RuntimeApiVersion})";
            stage = "Status";
            var status = await client.Runtime.StatusAsync(new StatusRequest(), deadline: Deadline(callTimeout), cancellationToken: ct).ConfigureAwait(false);
            stage = "ListPodSandbox";
            var sandboxes = await client.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: Deadline(listTimeout), cancellationToken: ct).ConfigureAwait(false);
            stage = "ListContainers";
            var containers = await client.Runtime.ListContainersAsync(new ListContainersRequest(), deadline: Deadline(listTimeout), cancellationToken: ct).ConfigureAwait(false);
            counts["sandboxes_ready"] = sandboxes.Items.Count(s => s.State == PodSandboxState.SandboxReady);
            counts["sandboxes_not_ready"] = sandboxes.Items.Count(s => s.State != PodSandboxState.SandboxReady);
            counts["containers_running"] = containers.Containers.Count(c => c.State == ContainerState.ContainerRunning);
            counts["containers_exited"] = containers.Containers.Count(c => c.State == ContainerState.ContainerExited);
            var summary = $"{versionText}: {counts["sandboxes_ready"]} ready / {counts["sandboxes_not_ready"]} not-ready sandboxes, "
                + $"{counts["containers_running"]} running / {counts["containers_exited"]} exited containers";
            var runtime = status.Status?.Conditions.FirstOrDefault(c => c.Type == "RuntimeReady");
            var network = status.Status?.Conditions.FirstOrDefault(c => c.Type == "NetworkReady");
            if (runtime is not { Status: true })
            {
                return new(CriCondition.Failing, $"RuntimeReady={(runtime is null ? "missing" : "false")}{Why(runtime)}; {summary}", sw.Elapsed, counts, versionText);
            }

            if (network is not { Status: true })
            {
                return new(CriCondition.Degraded, $"degraded: NetworkReady={(network is null ? "missing" : "false")}{Why(network)} (the CNI is not ready: only host-network pods start); {summary}",
                    sw.Elapsed, counts, versionText);
            }

            return new(CriCondition.Healthy, summary, sw.Elapsed, counts, versionText);
        }
        catch (RpcException ex) when (!ct.IsCancellationRequested)
        {
            if (ex.StatusCode == StatusCode.DeadlineExceeded && stage == "Version"
                && await PeerErrors.DownAfterTimeoutAsync(client.Endpoint, name, name, ct).ConfigureAwait(false) is { } down)
            {
                return new(CriCondition.Down, "down: " + down, sw.Elapsed, counts, null);
            }

            return new(Classify(ex, stage), Describe(ex, name, client.Endpoint, stage, stage is "Version" or "Status" ? callTimeout : listTimeout), sw.Elapsed, counts, null);
        }
    }

    public static CriCondition Classify(RpcException ex, string stage) => ex.StatusCode switch
    {
        StatusCode.DeadlineExceeded => CriCondition.Hung,
        StatusCode.Unavailable => CriCondition.Down,
        StatusCode.Unimplemented when stage == "Version" => CriCondition.NotCri,
        _ => CriCondition.Failing,
    };

    public static string Describe(RpcException ex, string name, string endpoint, string stage, TimeSpan deadline) => ex.StatusCode switch
    {
        StatusCode.DeadlineExceeded =>
            $"hung: {name} at {PeerErrors.UnixPath(endpoint)} accepted the connection but {stage} did not answer within {deadline.TotalSeconds:0.#}s",
        StatusCode.Unavailable => "down: " + PeerErrors.Describe(ex.Status.DebugException ?? ex, name, name, endpoint).Message,
        StatusCode.Unimplemented when stage == "Version" =>
            $"not a CRI runtime: {name} at {PeerErrors.UnixPath(endpoint)} answers, but not runtime.v1.RuntimeService ({ex.Status.Detail}): "
            + "its CRI plugin is disabled or failed to load (see its log)",
        _ => $"{stage} failed: {ex.StatusCode}: {ex.Status.Detail}",
    };

    private static string Why(RuntimeCondition? c) =>
        c is null || (c.Reason.Length == 0 && c.Message.Length == 0) ? string.Empty : $" ({c.Reason}: {c.Message})";

    private static DateTime Deadline(TimeSpan t) => DateTime.UtcNow.Add(t);
}
