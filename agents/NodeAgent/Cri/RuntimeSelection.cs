namespace Toolforge.Agents.NodeAgent.Cri;

/// <summary>Which runtimes a node-agent talks to, from NodeAgent:Runtime and which sockets exist (pure: the file test comes in).</summary>
public static class RuntimeSelection
{
    public static (bool Cri, bool Docker) Resolve(RuntimeMode mode, string criEndpoint, string dockerEndpoint, Func<string, bool> socketExists) => mode switch
    {
        RuntimeMode.Cri => (true, false),
        RuntimeMode.Docker => (false, true),
        RuntimeMode.Both => (true, true),
        _ when socketExists(Path(criEndpoint)) => (true, false),
        _ when socketExists(Path(dockerEndpoint)) => (false, true),
        _ => (true, false), // neither: today's workers run containerd; its check says it is down
    };

    private static string Path(string endpoint) => Common.Checks.PeerErrors.UnixPath(endpoint) ?? endpoint;
}
