using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Daemon;

/// <summary>The "Builder" section of /etc/toolforge-agents/builder-agent.json.</summary>
public sealed class BuilderOptions : IValidatedOptions
{
    public const string Section = "Builder";

    /// <summary>The checkout of the image repository (toollabs-images).</summary>
    public string Repository { get; set; } = "/srv/toollabs-images";

    public string Registry { get; set; } = NamingOptions.DefaultRegistry;

    public string ImagePrefix { get; set; } = NamingOptions.DefaultPrefix;

    public string DockerEndpoint { get; set; } = "unix:///var/run/docker.sock";

    /// <summary>Independent images built at once.</summary>
    public int Jobs { get; set; } = 2;

    /// <summary>Deadline of short Engine API calls (inspect, list, ping).</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Deadline of one image's build or push.</summary>
    public TimeSpan BuildTimeout { get; set; } = TimeSpan.FromHours(2);

    /// <summary>How often Docker's health is checked and reported.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Registry credentials by registry host; otherwise those in <see cref="DockerConfig"/>.</summary>
    public Dictionary<string, RegistryLogin> Credentials { get; set; } = [];

    /// <summary>The docker CLI's config.json to read credentials from when a registry is not in Credentials.</summary>
    public string DockerConfig { get; set; } = "/root/.docker/config.json";

    public IEnumerable<string> Validate(string section)
    {
        var problems = new List<string>();
        if (!Directory.Exists(Repository))
        {
            problems.Add($"{Check.Key(section, nameof(Repository))}: directory {Repository} does not exist");
        }

        problems.AddRange(Check.Required(section, nameof(Registry), Registry));
        problems.AddRange(Check.Required(section, nameof(ImagePrefix), ImagePrefix));
        problems.AddRange(Check.Range(section, nameof(Jobs), Jobs, 1, 64));
        problems.AddRange(Check.Positive(section, nameof(CallTimeout), CallTimeout));
        problems.AddRange(Check.Positive(section, nameof(BuildTimeout), BuildTimeout));
        problems.AddRange(Check.Positive(section, nameof(CheckInterval), CheckInterval));
        if (!Uri.TryCreate(DockerEndpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("unix" or "tcp" or "http" or "npipe"))
        {
            problems.Add($"{Check.Key(section, nameof(DockerEndpoint))}: must be unix:///path, tcp://host:port or npipe://... (got \"{DockerEndpoint}\")");
        }

        if (DockerConfig.Length > 0 && File.Exists(DockerConfig))
        {
            problems.AddRange(Check.Settled(() =>
            {
                try
                {
                    _ = Docker.BuilderDocker.ReadDockerConfig(DockerConfig);
                    return [];
                }
                catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or InvalidOperationException or IOException or UnauthorizedAccessException)
                {
                    return [$"{Check.Key(section, nameof(DockerConfig))}: {DockerConfig} is not a docker config.json ({ex.Message.Split('\n')[0]})"];
                }
            }));
        }
        else if (Directory.Exists(DockerConfig))
        {
            problems.Add($"{Check.Key(section, nameof(DockerConfig))}: {DockerConfig} is a directory, not a file");
        }

        foreach (var (host, login) in Credentials)
        {
            if (string.IsNullOrEmpty(login.Username) || string.IsNullOrEmpty(login.Password))
            {
                problems.Add($"{Check.Key(section, $"Credentials:{host}")}: needs Username and Password");
            }
        }

        return problems;
    }
}

public sealed class RegistryLogin
{
    public string Username { get; set; } = string.Empty;

    public string Password { get; set; } = string.Empty;
}
