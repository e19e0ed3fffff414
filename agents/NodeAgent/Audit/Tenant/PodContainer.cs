namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

/// <summary>
/// A running pod container as its runtime sees it: the image as the pod asked for it (and, over CRI, the resolved
/// digest), and the user it runs as (null when it cannot be read: <see cref="UserProblem"/> says why).
/// </summary>
public sealed record PodContainer(string Id, string Namespace, string Pod, string Container, string Image, string? User, string Digest = "", string? UserProblem = null);
