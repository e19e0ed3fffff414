using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Checks.Images;

/// <summary>
/// NodeAgent:Images (issue 27): the images this node's runtime holds, listed every Interval and sent with the agent's
/// reports, so the coordinator knows which nodes hold and use each digest (`agentctl images`, and the registry's
/// retention, which must never delete what a node holds). The runtime is the one NodeAgent:Runtime chose.
/// </summary>
public sealed class NodeImagesOptions() : TimedCallCheckOptions(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(30))
{
    public const string Section = "NodeAgent:Images";

    /// <summary>
    /// Also the images the pods bound to this node name (from the Kubernetes API, when NodeAgent:Kubernetes reads it):
    /// a pod whose image is not pulled yet, or no longer held, still needs it in the registry. On by default; a run
    /// whose pod list fails sends nothing (the coordinator keeps the last list).
    /// </summary>
    public bool Pods { get; set; } = true;

    /// <summary>More pods bound to this node than this: the run fails (memory stays bounded).</summary>
    public int MaxPods { get; set; } = 1000;

    protected override IEnumerable<string> ValidateCheck(string section) =>
        MaxPods < 1 ? [$"{Check.Key(section, nameof(MaxPods))}: must be at least 1 (got {MaxPods})"] : [];
}
