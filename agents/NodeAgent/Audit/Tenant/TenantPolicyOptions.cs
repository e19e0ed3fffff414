using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.Tenant;

public sealed class TenantPolicyOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:TenantPolicy";

    public bool Enabled { get; set; } = true;

    /// <summary>Images of tool containers must start with this.</summary>
    public string AllowedRegistryPrefix { get; set; } = "docker-registry.svc.toolforge.org/";

    public List<string> ExemptNamespaces { get; set; } = ["kube-system", "metrics", "ingress-nginx", "calico-system", "tigera-operator"];

    /// <summary>The namespace annotation holding the UID a tool's containers must run as.</summary>
    public string RunAsUserAnnotation { get; set; } = "toolforge.org/run-as-user";

    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(60);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(AllowedRegistryPrefix), AllowedRegistryPrefix));
        p.AddRange(Check.Required(section, nameof(RunAsUserAnnotation), RunAsUserAnnotation));
        p.AddRange(Check.Positive(section, nameof(Interval), Interval));
        return p;
    }
}
