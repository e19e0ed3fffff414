using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Kubernetes;

/// <summary>NodeAgent:Kubernetes: where the cluster view comes from (the API server or a snapshot file).</summary>
public sealed class KubernetesOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Kubernetes";

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

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        // An absent kubeconfig is a host that is no node (yet): the cluster checks say "not applicable" until puppet
        // writes it. A path that is something else (a directory) is a mistake.
        if (Enabled && Source == ClusterSource.Api)
        {
            p.AddRange(Check.Required(section, nameof(Kubeconfig), Kubeconfig));
            if (Directory.Exists(Kubeconfig))
            {
                p.Add($"{Check.Key(section, nameof(Kubeconfig))}: {Kubeconfig} is a directory, not a kubeconfig file");
            }
        }

        if (Enabled && Source == ClusterSource.File)
        {
            var missing = Check.FileExists(section, nameof(File), File).ToList();
            p.AddRange(missing.Count > 0 ? missing : Check.Settled(() => SnapshotProblems(Check.Key(section, nameof(File))).ToList()));
        }

        if (!Enum.IsDefined(Source))
        {
            p.Add($"{Check.Key(section, nameof(Source))}: must be api or file");
        }

        p.AddRange(Check.Positive(section, nameof(FileInterval), FileInterval));
        p.AddRange(Check.Positive(section, nameof(RequestTimeout), RequestTimeout));
        p.AddRange(Check.Positive(section, nameof(WatchTimeout), WatchTimeout));
        return p;
    }

    // A Pod list, or anything that is not `kubectl get svc,endpointslices,namespaces -A -o json`, would be audited
    // as a cluster with no Service: clean. It is refused at start instead (the same reading the cluster view does).
    private IEnumerable<string> SnapshotProblems(string key)
    {
        try
        {
            _ = KubectlSnapshot.ReadServicesFile(key, File);
            return [];
        }
        catch (InvalidDataException ex)
        {
            return [ex.Message];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return [ex.Message]; // names the key and the file (BoundedFile)
        }
    }
}
