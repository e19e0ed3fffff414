using System.Collections.Concurrent;

namespace Toolforge.Agents.Common.Checks;

/// <summary>
/// Which peers are known to be down. Several checks use one peer (the runtime check and the tenant audit both ask
/// Docker): the first to find it down says so at WRN, the others quietly, so a stopped dockerd is one warning line,
/// not one per check and poll. Clearing happens when a check finds the peer healthy again.
/// </summary>
public sealed class PeerAlerts
{
    private readonly ConcurrentDictionary<string, string> _down = new(StringComparer.Ordinal);

    /// <summary>True when this is news (the peer was not known to be down).</summary>
    public bool Raise(string peer, string message) => _down.TryAdd(peer, message);

    public void Clear(string peer) => _down.TryRemove(peer, out _);

    public bool IsDown(string peer) => _down.ContainsKey(peer);
}
