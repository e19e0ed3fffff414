using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

public sealed class TenantPolicyOptions() : TimedCheckOptions(TimeSpan.FromSeconds(60))
{
    public const string Section = "NodeAgent:TenantPolicy";

    /// <summary>Images of tool containers must start with this.</summary>
    public string AllowedRegistryPrefix { get; set; } = "docker-registry.svc.toolforge.org/";

    public List<string> ExemptNamespaces { get; set; } = ["kube-system", "metrics", "ingress-nginx", "calico-system", "tigera-operator"];

    /// <summary>The namespace annotation holding the UID a tool's containers must run as.</summary>
    public string RunAsUserAnnotation { get; set; } = "toolforge.org/run-as-user";

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(AllowedRegistryPrefix), AllowedRegistryPrefix));
        p.AddRange(Check.Required(section, nameof(RunAsUserAnnotation), RunAsUserAnnotation));
        return p;
    }
}
