using System.Text.RegularExpressions;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent;

public sealed class KubernetesOptions : IValidatedOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>api (list and watch the API server) or file (a kubectl JSON snapshot, <see cref="File"/>).</summary>
    public ClusterSource Source { get; set; } = ClusterSource.Api;

    /// <summary>With Source file: the snapshot, read again when it changes.</summary>
    public string File { get; set; } = string.Empty;

    /// <summary>With Source file: how often the file is looked at for a change.</summary>
    public TimeSpan FileInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The kubeconfig to use (the kubelet's, or one for the agent).</summary>
    public string Kubeconfig { get; set; } = "/etc/kubernetes/kubelet.conf";

    /// <summary>Deadline of a list call; watches are renewed every <see cref="WatchTimeout"/>.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan WatchTimeout { get; set; } = TimeSpan.FromMinutes(5);

    public NodeConditionsOptions Conditions { get; set; } = new();

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        if (Enabled && Source == ClusterSource.Api)
        {
            p.AddRange(Check.FileExists(section, nameof(Kubeconfig), Kubeconfig));
        }

        if (Enabled && Source == ClusterSource.File)
        {
            p.AddRange(Check.FileExists(section, nameof(File), File));
        }

        if (!Enum.IsDefined(Source))
        {
            p.Add($"{Check.Key(section, nameof(Source))}: must be api or file");
        }

        p.AddRange(Check.Positive(section, nameof(FileInterval), FileInterval));
        p.AddRange(Check.Positive(section, nameof(RequestTimeout), RequestTimeout));
        p.AddRange(Check.Positive(section, nameof(WatchTimeout), WatchTimeout));
        p.AddRange(Conditions.Validate(Check.Key(section, nameof(Conditions))));
        if (Conditions.Enabled && (!Enabled || Source != ClusterSource.Api))
        {
            p.Add($"{Check.Key(section, "Conditions:Enabled")}: needs the API server (Kubernetes:Enabled true and Source api)");
        }
        return p;
    }
}
