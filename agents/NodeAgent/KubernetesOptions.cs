using System.Text.RegularExpressions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent;

public sealed class KubernetesOptions : IValidatedOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>The kubeconfig to use (the kubelet's, or one for the agent).</summary>
    public string Kubeconfig { get; set; } = "/etc/kubernetes/kubelet.conf";

    /// <summary>Deadline of a list call; watches are renewed every <see cref="WatchTimeout"/>.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan WatchTimeout { get; set; } = TimeSpan.FromMinutes(5);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        if (Enabled)
        {
            p.AddRange(Check.FileExists(section, nameof(Kubeconfig), Kubeconfig));
        }

        p.AddRange(Check.Positive(section, nameof(RequestTimeout), RequestTimeout));
        p.AddRange(Check.Positive(section, nameof(WatchTimeout), WatchTimeout));
        return p;
    }
}
