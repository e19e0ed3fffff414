using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Checks.Docker;

public sealed class DockerOptions() : TimedCheckOptions(TimeSpan.FromSeconds(15))
{
    public const string Section = "NodeAgent:Docker";

    public string Endpoint { get; set; } = "unix:///var/run/docker.sock";

    public string Unit { get; set; } = "docker.service";

    /// <summary>/_ping must answer within this, or Docker is "down".</summary>
    public TimeSpan PingTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The container listing must answer within this, or a Docker that answers ping is "hung".</summary>
    public TimeSpan ListTimeout { get; set; } = TimeSpan.FromSeconds(5);

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        var p = new List<string>();
        if (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var u) || u.Scheme is not ("unix" or "tcp" or "http" or "npipe"))
        {
            p.Add($"{Check.Key(section, nameof(Endpoint))}: must be unix:///path or tcp://host:port (got \"{Endpoint}\")");
        }
        p.AddRange(Check.Positive(section, nameof(PingTimeout), PingTimeout));
        p.AddRange(Check.Positive(section, nameof(ListTimeout), ListTimeout));
        return p;
    }
}
