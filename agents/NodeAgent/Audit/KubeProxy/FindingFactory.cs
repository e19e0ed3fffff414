using System.Globalization;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>
/// Makes the findings of one kube-proxy audit (iptables, nftables, conntrack): kind, severity, subject, message and
/// details, with the audit's check name. The findings every mode makes alike (nodeport-forbidden) are made here once.
/// </summary>
internal sealed class FindingFactory(string check)
{
    public string Check { get; } = check;

    public Finding Make(string kind, Severity severity, string subject, string message, params (string Key, string Value)[] details)
    {
        var f = new Finding { Kind = kind, Severity = severity, Subject = subject, Message = message, Check = Check };
        foreach (var (k, v) in details)
        {
            f.Details[k] = v;
        }

        return f;
    }

    /// <summary>nodeport-forbidden: a Service port with a NodePort while policy keeps NodePorts at 0 (Toolforge's quota).</summary>
    public Finding NodePortForbidden(string servicePort, int nodePort) =>
        Make("nodeport-forbidden", Severity.Warning, servicePort, $"{servicePort} has NodePort {nodePort}; policy keeps NodePorts at 0",
            ("node_port", nodePort.ToString(CultureInfo.InvariantCulture)));
}
