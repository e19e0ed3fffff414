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

    public DockerOptions Docker { get; set; } = new();

    public KubernetesOptions Kubernetes { get; set; } = new();

    public IptablesOptions Iptables { get; set; } = new();

    public JournalOptions Journal { get; set; } = new();

    public TenantPolicyOptions TenantPolicy { get; set; } = new();

    public RemediationOptions Remediation { get; set; } = new();

    /// <summary>Where the agent keeps what must survive a restart (journal cursor, last remediation).</summary>
    public string StateDirectory { get; set; } = "/var/lib/toolforge-node-agent";

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(DBusAddress), DBusAddress));
        p.AddRange(Check.Positive(section, nameof(DBusTimeout), DBusTimeout));
        p.AddRange(Kubelet.Validate(Check.Key(section, nameof(Kubelet))));
        p.AddRange(Docker.Validate(Check.Key(section, nameof(Docker))));
        p.AddRange(Kubernetes.Validate(Check.Key(section, nameof(Kubernetes))));
        p.AddRange(Iptables.Validate(Check.Key(section, nameof(Iptables))));
        p.AddRange(Journal.Validate(Check.Key(section, nameof(Journal))));
        p.AddRange(TenantPolicy.Validate(Check.Key(section, nameof(TenantPolicy))));
        p.AddRange(Remediation.Validate(Check.Key(section, nameof(Remediation))));
        return p;
    }
}

public sealed class KubeletOptions : IValidatedOptions
{
    public bool Enabled { get; set; } = true;

    public string Unit { get; set; } = "kubelet.service";

    public string HealthzUrl { get; set; } = "http://127.0.0.1:10248/healthz";

    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Restarts within <see cref="FlapWindow"/> that make the unit "flapping".</summary>
    public int FlapRestarts { get; set; } = 5;

    public TimeSpan FlapWindow { get; set; } = TimeSpan.FromMinutes(20);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(Unit), Unit));
        if (!Uri.TryCreate(HealthzUrl, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
        {
            p.Add($"{Check.Key(section, nameof(HealthzUrl))}: must be an http(s) URL (got \"{HealthzUrl}\")");
        }

        p.AddRange(Check.Positive(section, nameof(Interval), Interval));
        p.AddRange(Check.Positive(section, nameof(Timeout), Timeout));
        p.AddRange(Check.Range(section, nameof(FlapRestarts), FlapRestarts, 1, 1000));
        p.AddRange(Check.Positive(section, nameof(FlapWindow), FlapWindow));
        return p;
    }
}

public sealed class DockerOptions : IValidatedOptions
{
    public bool Enabled { get; set; } = true;

    public string Endpoint { get; set; } = "unix:///var/run/docker.sock";

    public string Unit { get; set; } = "docker.service";

    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>/_ping must answer within this, or Docker is "down".</summary>
    public TimeSpan PingTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The container listing must answer within this, or a Docker that answers ping is "hung".</summary>
    public TimeSpan ListTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        if (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var u) || u.Scheme is not ("unix" or "tcp" or "http" or "npipe"))
        {
            p.Add($"{Check.Key(section, nameof(Endpoint))}: must be unix:///path or tcp://host:port (got \"{Endpoint}\")");
        }

        p.AddRange(Check.Positive(section, nameof(Interval), Interval));
        p.AddRange(Check.Positive(section, nameof(PingTimeout), PingTimeout));
        p.AddRange(Check.Positive(section, nameof(ListTimeout), ListTimeout));
        return p;
    }
}

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

public sealed class IptablesOptions : IValidatedOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>The program that prints the rules: iptables-save (nft backend), iptables-legacy-save, ...</summary>
    public string Command { get; set; } = "iptables-save";

    public List<string> Arguments { get; set; } = [];

    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(60);

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Report every NodePort Service (Toolforge's quota keeps NodePorts at 0).</summary>
    public bool ForbidNodePorts { get; set; } = true;

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(Command), Command));
        p.AddRange(Check.Positive(section, nameof(Interval), Interval));
        p.AddRange(Check.Positive(section, nameof(Timeout), Timeout));
        return p;
    }
}

public sealed class JournalOptions : IValidatedOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Units whose messages the rules see (the kernel's are added when <see cref="Kernel"/> is on).</summary>
    public List<string> Units { get; set; } = ["kubelet.service", "docker.service", "containerd.service"];

    public bool Kernel { get; set; } = true;

    /// <summary>Read these journal files instead of the system journal (tests, archived journals).</summary>
    public List<string> Files { get; set; } = [];

    /// <summary>Rules; empty means the built-in defaults (OOM kill, hung task, ext4/XFS errors, runtime down, PLEG, docker deadline).</summary>
    public List<JournalRuleOptions> Rules { get; set; } = [];

    /// <summary>How often condition quiet periods and event windows are re-judged.</summary>
    public TimeSpan EvaluateInterval { get; set; } = TimeSpan.FromSeconds(10);

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Positive(section, nameof(EvaluateInterval), EvaluateInterval));
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Rules.Count; i++)
        {
            p.AddRange(Rules[i].Validate(Check.Key(section, $"Rules:{i}")));
            if (!names.Add(Rules[i].Name))
            {
                p.Add($"{Check.Key(section, $"Rules:{i}:Name")}: rule \"{Rules[i].Name}\" appears twice");
            }
        }

        return p;
    }
}

/// <summary>
/// A journal rule: an "event" is counted in a window and fails above a threshold; a "condition" is set by its
/// pattern and clears on its recovery pattern or after a quiet period.
/// </summary>
public sealed class JournalRuleOptions : IValidatedOptions
{
    public string Name { get; set; } = string.Empty;

    /// <summary>event or condition.</summary>
    public string Type { get; set; } = "event";

    /// <summary>Regular expression over MESSAGE.</summary>
    public string Pattern { get; set; } = string.Empty;

    /// <summary>Only messages from these sources: unit names (kubelet.service), SYSLOG_IDENTIFIERs, or "kernel". Empty: any.</summary>
    public List<string> Sources { get; set; } = [];

    /// <summary>Events: more than this many within <see cref="Window"/> is failing (1 or more is warning).</summary>
    public int Threshold { get; set; } = 1;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Conditions: a message matching this clears it.</summary>
    public string RecoveryPattern { get; set; } = string.Empty;

    /// <summary>Conditions: cleared when nothing matched for this long (zero: only the recovery pattern clears it).</summary>
    public TimeSpan QuietPeriod { get; set; } = TimeSpan.Zero;

    /// <summary>warning or failing: the state while the rule fires.</summary>
    public string Severity { get; set; } = "failing";

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        if (!Regex.IsMatch(Name, "^[a-z0-9][a-z0-9-]{0,63}$"))
        {
            p.Add($"{Check.Key(section, nameof(Name))}: \"{Name}\" must be lower-case letters, digits and '-'");
        }

        p.AddRange(Check.OneOf(section, nameof(Type), Type, "event", "condition"));
        p.AddRange(Check.OneOf(section, nameof(Severity), Severity, "warning", "failing"));
        p.AddRange(RegexProblem(section, nameof(Pattern), Pattern, required: true));
        p.AddRange(RegexProblem(section, nameof(RecoveryPattern), RecoveryPattern, required: false));
        p.AddRange(Check.Range(section, nameof(Threshold), Threshold, 1, 1_000_000));
        p.AddRange(Check.Positive(section, nameof(Window), Window));
        if (Type == "condition" && RecoveryPattern.Length == 0 && QuietPeriod <= TimeSpan.Zero)
        {
            p.Add($"{Check.Key(section, nameof(RecoveryPattern))}: rule \"{Name}\" is a condition and needs a RecoveryPattern or a QuietPeriod to clear");
        }

        return p;
    }

    private IEnumerable<string> RegexProblem(string section, string key, string pattern, bool required)
    {
        if (pattern.Length == 0)
        {
            if (required)
            {
                yield return $"{Check.Key(section, key)}: rule \"{Name}\" needs a pattern";
            }

            yield break;
        }

        string? error = null;
        try
        {
            _ = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException ex)
        {
            error = ex.Message;
        }

        if (error is not null)
        {
            yield return $"{Check.Key(section, key)}: rule \"{Name}\" has an invalid regular expression: {error}";
        }
    }
}

public sealed class TenantPolicyOptions : IValidatedOptions
{
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

public sealed class RemediationOptions : IValidatedOptions
{
    /// <summary>Restart kubelet over D-Bus when its checks failed for <see cref="UnitRemediation.FailingFor"/>. Off by default.</summary>
    public UnitRemediation Kubelet { get; set; } = new();

    public UnitRemediation Docker { get; set; } = new();

    public IEnumerable<string> Validate(string section) =>
        Kubelet.Validate(Check.Key(section, nameof(Kubelet))).Concat(Docker.Validate(Check.Key(section, nameof(Docker))));
}

public sealed class UnitRemediation : IValidatedOptions
{
    public bool Enabled { get; set; }

    public TimeSpan FailingFor { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan Cooldown { get; set; } = TimeSpan.FromMinutes(30);

    public IEnumerable<string> Validate(string section) =>
        Check.Positive(section, nameof(FailingFor), FailingFor).Concat(Check.Positive(section, nameof(Cooldown), Cooldown));
}
