using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Checks.Kubelet;

public sealed class KubeletOptions : IValidatedOptions
{
    public const string Section = "NodeAgent:Kubelet";

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
