namespace Toolforge.Agents.Common.Checks;

/// <summary>
/// An expected failure of a peer (Docker, containerd, the API server, D-Bus): down, refusing, timing out. Its message
/// is one line naming the peer and what to try; it is shown as the check's message, never as a stack trace.
/// </summary>
public class PeerUnavailableException(string peer, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The peer's name as the alerts know it: "Docker at unix:///var/run/docker.sock".</summary>
    public string Peer { get; } = peer;
}
