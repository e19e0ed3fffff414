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

    protected override IEnumerable<string> ValidateCheck(string section) => [];
}
