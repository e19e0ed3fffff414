using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent;

/// <summary>
/// The "NodeAgent" section's own keys: what several features share (this node's name, D-Bus, the state directory, the
/// runtime choice). Each feature binds its own section below it (NodeAgent:Kubelet, NodeAgent:Nftables, ...) into its
/// own options type, in its folder.
/// </summary>
public sealed class NodeOptions : IValidatedOptions
{
    public const string Section = "NodeAgent";

    /// <summary>This node's name in Kubernetes. Empty: the name the agent reports as.</summary>
    public string NodeName { get; set; } = string.Empty;

    /// <summary>"system" for the system bus, or a D-Bus address such as unix:path=/run/dbus/system_bus_socket.</summary>
    public string DBusAddress { get; set; } = "system";

    public TimeSpan DBusTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>auto (whatever socket exists, CRI first), cri, docker, or both.</summary>
    public RuntimeMode Runtime { get; set; } = RuntimeMode.Auto;

    /// <summary>Where the agent keeps what must survive a restart (journal cursor, last remediation, conditions written).</summary>
    public string StateDirectory { get; set; } = "/var/lib/toolforge-node-agent";

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(DBusAddress), DBusAddress));
        p.AddRange(Check.Positive(section, nameof(DBusTimeout), DBusTimeout));
        if (!Enum.IsDefined(Runtime))
        {
            p.Add($"{Check.Key(section, nameof(Runtime))}: must be auto, cri, docker or both");
        }

        return p;
    }
}
