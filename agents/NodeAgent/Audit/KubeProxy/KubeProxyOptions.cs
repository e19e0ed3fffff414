using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Audit.KubeProxy;

/// <summary>NodeAgent:KubeProxy: which mode kube-proxy runs in, and where it says so.</summary>
public sealed class KubeProxyOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:KubeProxy";

    public KubeProxyMode Mode { get; set; } = KubeProxyMode.Auto;

    /// <summary>kube-proxy's own answer (its metrics server): "iptables", "nftables" or "ipvs".</summary>
    public string ProxyModeUrl { get; set; } = "http://127.0.0.1:10249/proxyMode";

    public IEnumerable<string> Validate(string section)
    {
        if (!Enum.IsDefined(Mode))
        {
            yield return $"{Check.Key(section, nameof(Mode))}: must be auto, iptables or nftables";
        }

        if (!Uri.TryCreate(ProxyModeUrl, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
        {
            yield return $"{Check.Key(section, nameof(ProxyModeUrl))}: must be an http(s) URL (got \"{ProxyModeUrl}\")";
        }
    }
}
