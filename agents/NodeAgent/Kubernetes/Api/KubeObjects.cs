using System.Text.Json.Serialization;

namespace Toolforge.Agents.NodeAgent.Kubernetes.Api;

// The parts of the Kubernetes objects the node-agent reads, as the API server's JSON has them (field names per the
// core/v1 and discovery.k8s.io/v1 OpenAPI schema). Everything else in an object is skipped while reading, so a list of
// 10,000 Services costs what these fields cost, not the whole object graph. Read and written by generated code
// (KubeJson): nothing here needs reflection, in a JIT or a NativeAOT binary.

public sealed class KubeMeta
{
    public string? Name { get; set; }

    [JsonPropertyName("namespace")]
    public string? Namespace { get; set; }

    public string? ResourceVersion { get; set; }

    public Dictionary<string, string>? Labels { get; set; }

    public Dictionary<string, string>? Annotations { get; set; }

    public string? Uid { get; set; }

    /// <summary>Set once a delete was asked for: the time the object is due to be gone (a pod: now + its grace).</summary>
    public DateTimeOffset? DeletionTimestamp { get; set; }

    public long? DeletionGracePeriodSeconds { get; set; }

    public List<KubeOwnerReference>? OwnerReferences { get; set; }
}

public sealed class KubeOwnerReference
{
    public string? Kind { get; set; }

    public string? Name { get; set; }

    public bool? Controller { get; set; }
}

public sealed class KubeListMeta
{
    public string? ResourceVersion { get; set; }

    /// <summary>Where the next page of a list with a limit starts (absent on the last page).</summary>
    [JsonPropertyName("continue")]
    public string? Continue { get; set; }
}

/// <summary>A List response: its resourceVersion (where a watch continues) and its items.</summary>
public sealed class KubeList<T>
{
    public KubeListMeta? Metadata { get; set; }

    public List<T>? Items { get; set; }
}

/// <summary>One line of a watch: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (whose object is a Status).</summary>
public sealed class KubeWatchEvent<T>
{
    public string? Type { get; set; }

    public T? Object { get; set; }
}

/// <summary>What the API server answers a failed call with (kind Status).</summary>
public sealed class KubeStatus
{
    public string? Status { get; set; }

    public string? Message { get; set; }

    public string? Reason { get; set; }

    public int? Code { get; set; }

    public KubeStatusDetails? Details { get; set; }
}

public sealed class KubeStatusDetails
{
    public string? Name { get; set; }

    public string? Kind { get; set; }

    public List<KubeStatusCause>? Causes { get; set; }

    public int? RetryAfterSeconds { get; set; }
}

/// <summary>One cause of a refusal (its type is written as "reason": DisruptionBudget for a budget that says no).</summary>
public sealed class KubeStatusCause
{
    public string? Reason { get; set; }

    public string? Message { get; set; }
}

public sealed class KubePod
{
    public KubeMeta? Metadata { get; set; }

    public KubePodSpec? Spec { get; set; }

    public KubePodStatus? Status { get; set; }
}

public sealed class KubePodSpec
{
    public string? NodeName { get; set; }

    public long? TerminationGracePeriodSeconds { get; set; }

    public List<KubePodContainer>? Containers { get; set; }

    public List<KubePodContainer>? InitContainers { get; set; }

    public List<KubePodContainer>? EphemeralContainers { get; set; }
}

/// <summary>A container of a pod's spec: only the image it names (a tag, or pinned "name@sha256:…").</summary>
public sealed class KubePodContainer
{
    public string? Image { get; set; }
}

public sealed class KubePodStatus
{
    public string? Phase { get; set; }

    public List<KubeContainerStatus>? ContainerStatuses { get; set; }

    public List<KubeContainerStatus>? InitContainerStatuses { get; set; }

    public List<KubeContainerStatus>? EphemeralContainerStatuses { get; set; }
}

/// <summary>A container's status: the image it runs as the runtime resolved it (imageID: "name@sha256:…", an image id, or with a scheme such as docker-pullable://).</summary>
public sealed class KubeContainerStatus
{
    [System.Text.Json.Serialization.JsonPropertyName("imageID")]
    public string? ImageID { get; set; }
}

public sealed class KubeService
{
    public KubeMeta? Metadata { get; set; }

    public KubeServiceSpec? Spec { get; set; }

    public KubeServiceStatus? Status { get; set; }
}

public sealed class KubeServiceSpec
{
    public string? Type { get; set; }

    public string? ClusterIP { get; set; }

    public List<string>? ClusterIPs { get; set; }

    public List<KubeServicePort>? Ports { get; set; }

    public List<string>? ExternalIPs { get; set; }

    public string? InternalTrafficPolicy { get; set; }

    public string? ExternalTrafficPolicy { get; set; }

    public List<string>? LoadBalancerSourceRanges { get; set; }

    public string? SessionAffinity { get; set; }
}

public sealed class KubeServicePort
{
    public string? Name { get; set; }

    public int? Port { get; set; }

    public string? Protocol { get; set; }

    public int? NodePort { get; set; }
}

public sealed class KubeServiceStatus
{
    public KubeLoadBalancerStatus? LoadBalancer { get; set; }
}

public sealed class KubeLoadBalancerStatus
{
    public List<KubeLoadBalancerIngress>? Ingress { get; set; }
}

public sealed class KubeLoadBalancerIngress
{
    public string? Ip { get; set; }
}

public sealed class KubeEndpointSlice
{
    public KubeMeta? Metadata { get; set; }

    public string? AddressType { get; set; }

    public List<KubeEndpoint>? Endpoints { get; set; }

    public List<KubeServicePort>? Ports { get; set; }
}

public sealed class KubeEndpoint
{
    public List<string>? Addresses { get; set; }

    public KubeEndpointConditions? Conditions { get; set; }

    public string? NodeName { get; set; }
}

public sealed class KubeEndpointConditions
{
    public bool? Ready { get; set; }

    public bool? Serving { get; set; }

    public bool? Terminating { get; set; }
}

public sealed class KubeNamespace
{
    public KubeMeta? Metadata { get; set; }
}

public sealed class KubeNode
{
    public KubeMeta? Metadata { get; set; }

    public KubeNodeSpec? Spec { get; set; }

    public KubeNodeStatus? Status { get; set; }
}

public sealed class KubeNodeSpec
{
    public bool? Unschedulable { get; set; }
}

public sealed class KubeNodeStatus
{
    public List<KubeNodeCondition>? Conditions { get; set; }

    public List<KubeNodeAddress>? Addresses { get; set; }
}

public sealed class KubeNodeCondition
{
    public string Type { get; set; } = string.Empty;

    public string? Status { get; set; }

    public string? Reason { get; set; }

    public string? Message { get; set; }

    public DateTimeOffset? LastHeartbeatTime { get; set; }

    public DateTimeOffset? LastTransitionTime { get; set; }
}

public sealed class KubeNodeAddress
{
    public string? Type { get; set; }

    public string? Address { get; set; }
}

/// <summary>A time as the API writes one (metav1.Time: RFC 3339, seconds, UTC).</summary>
public static class KubeTime
{
    public static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Only the name of a created object is read back.</summary>
public sealed class KubeCreated
{
    public KubeMeta? Metadata { get; set; }
}

/// <summary>The generated readers and writers of the types above (camelCase, as the API has them).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(KubeList<KubeService>))]
[JsonSerializable(typeof(KubeList<KubeEndpointSlice>))]
[JsonSerializable(typeof(KubeList<KubeNamespace>))]
[JsonSerializable(typeof(KubeList<KubeNode>))]
[JsonSerializable(typeof(KubeWatchEvent<KubeService>))]
[JsonSerializable(typeof(KubeWatchEvent<KubeEndpointSlice>))]
[JsonSerializable(typeof(KubeWatchEvent<KubeNamespace>))]
[JsonSerializable(typeof(KubeWatchEvent<KubeNode>))]
[JsonSerializable(typeof(KubeWatchEvent<KubeStatus>))]
[JsonSerializable(typeof(KubeStatus))]
[JsonSerializable(typeof(KubeService))]
[JsonSerializable(typeof(KubeEndpointSlice))]
[JsonSerializable(typeof(KubeNamespace))]
[JsonSerializable(typeof(KubeNode))]
[JsonSerializable(typeof(KubeCreated))]
[JsonSerializable(typeof(KubeList<KubePod>))]
[JsonSerializable(typeof(KubePod))]
public sealed partial class KubeJson : JsonSerializerContext;
