using System.Security.Cryptography;
using System.Text;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Coordinator.State;

/// <summary>
/// A finding's id, what `agentctl ack` takes: 12 hex digits of SHA-256 over (node, agent, kind, subject). The same on
/// every instance and across restarts, and for a finding that resolves and comes back (its acknowledgement does not:
/// that is bound to when it was first seen).
/// </summary>
public static class FindingIds
{
    public const int Length = 12;

    public static string Of(string node, AgentKind agent, string kind, string subject)
    {
        var text = string.Join('\0', node, ((int)agent).ToString(System.Globalization.CultureInfo.InvariantCulture), kind, subject);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), hash);
        return Convert.ToHexStringLower(hash[..(Length / 2)]);
    }
}
