using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Checks.Kubelet;

public sealed class KubeletOptions() : TimedCallCheckOptions(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5))
{
    public const string Section = "NodeAgent:Kubelet";

    public string Unit { get; set; } = "kubelet.service";

    public string HealthzUrl { get; set; } = "http://127.0.0.1:10248/healthz";

    /// <summary>Restarts within <see cref="FlapWindow"/> that make the unit "flapping".</summary>
    public int FlapRestarts { get; set; } = 5;

    public TimeSpan FlapWindow { get; set; } = TimeSpan.FromMinutes(20);

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Required(section, nameof(Unit), Unit));
        if (!Uri.TryCreate(HealthzUrl, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
        {
            p.Add($"{Check.Key(section, nameof(HealthzUrl))}: must be an http(s) URL (got \"{HealthzUrl}\")");
        }
        p.AddRange(Check.Range(section, nameof(FlapRestarts), FlapRestarts, 1, 1000));
        p.AddRange(Check.Positive(section, nameof(FlapWindow), FlapWindow));
        return p;
    }
}
