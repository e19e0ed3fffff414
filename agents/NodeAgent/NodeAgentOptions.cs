using System.Text.RegularExpressions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent;

/// <summary>The "NodeAgent" section of /etc/toolforge-agents/node-agent.json. Every check has its interval and timeout.</summary>
public sealed class NodeAgentOptions : IValidatedOptions
{
    public const string Section = "NodeAgent";

    /// <summary>This node's name in Kubernetes. Empty: the name the agent reports as.</summary>
    public string NodeName { get; set; } = string.Empty;

    /// <summary>"system" for the system bus, or a D-Bus address such as unix:path=/run/dbus/system_bus_socket.</summary>
    public string DBusAddress { get; set; } = "system";

    public TimeSpan DBusTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public KubeletOptions Kubelet { get; set; } = new();

    /// <summary>auto (whatever socket exists, CRI first), cri, docker, or both.</summary>
    public RuntimeMode Runtime { get; set; } = RuntimeMode.Auto;

    public CriOptions Cri { get; set; } = new();

    public DockerOptions Docker { get; set; } = new();

    public KubernetesOptions Kubernetes { get; set; } = new();

    public KubeProxyOptions KubeProxy { get; set; } = new();

    public IptablesOptions Iptables { get; set; } = new();

    public NftablesOptions Nftables { get; set; } = new();

    public ConntrackOptions Conntrack { get; set; } = new();

    public JournalOptions Journal { get; set; } = new();

    public TenantPolicyOptions TenantPolicy { get; set; } = new();

    public RemediationOptions Remediation { get; set; } = new();

    public StuckProcessesOptions StuckProcesses { get; set; } = new();

    /// <summary>Where the agent keeps what must survive a restart (journal cursor, last remediation).</summary>
    public string StateDirectory { get; set; } = "/var/lib/toolforge-node-agent";

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(DBusAddress), DBusAddress));
        p.AddRange(Check.Positive(section, nameof(DBusTimeout), DBusTimeout));
        p.AddRange(Kubelet.Validate(Check.Key(section, nameof(Kubelet))));
        p.AddRange(Docker.Validate(Check.Key(section, nameof(Docker))));
        p.AddRange(Cri.Validate(Check.Key(section, nameof(Cri))));
        if (!Enum.IsDefined(Runtime))
        {
            p.Add($"{Check.Key(section, nameof(Runtime))}: must be auto, cri, docker or both");
        }
        p.AddRange(Kubernetes.Validate(Check.Key(section, nameof(Kubernetes))));
        p.AddRange(Iptables.Validate(Check.Key(section, nameof(Iptables))));
        p.AddRange(Nftables.Validate(Check.Key(section, nameof(Nftables))));
        p.AddRange(Conntrack.Validate(Check.Key(section, nameof(Conntrack))));
        p.AddRange(KubeProxy.Validate(Check.Key(section, nameof(KubeProxy))));
        p.AddRange(Journal.Validate(Check.Key(section, nameof(Journal))));
        p.AddRange(TenantPolicy.Validate(Check.Key(section, nameof(TenantPolicy))));
        p.AddRange(Remediation.Validate(Check.Key(section, nameof(Remediation))));
        p.AddRange(StuckProcesses.Validate(Check.Key(section, nameof(StuckProcesses))));
        return p;
    }
}
