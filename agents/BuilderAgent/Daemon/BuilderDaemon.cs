using Microsoft.Extensions.Configuration;
using System.CommandLine;
using System.Diagnostics;
using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Promotion;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Resilience;

using Toolforge.Agents.BuilderAgent.Inventory;

namespace Toolforge.Agents.BuilderAgent.Daemon;

/// <summary>`serve`: the builder as a daemon taking build requests from the coordinator.</summary>
internal static partial class BuilderDaemon
{
    public const int DefaultMetricsPort = 9503;

    /// <param name="rootConfig">The program's own --config, given before `serve`; the same option after it is serve's.</param>
    public static Command Command(Option<string?> rootConfig)
    {
        var daemon = DaemonInfo.BuilderAgent;
        var config = ProgramCommandLine.ConfigOption(daemon);
        var serve = new Command("serve", $"Run as the daemon: take build requests from the coordinator (reads {daemon.DefaultConfigPath}, or --config)") { config };
        serve.Validators.Add(r =>
        {
            if (r.GetResult(rootConfig) is { Implicit: false } before && r.GetResult(config) is { Implicit: false } after
                && before.GetValueOrDefault<string?>() != after.GetValueOrDefault<string?>())
            {
                r.AddError($"--config: given twice ({before.GetValueOrDefault<string?>()} and {after.GetValueOrDefault<string?>()}): give one");
            }
        });
        serve.SetAction((pr, _) => RunAsync(pr.GetValue(config) ?? pr.GetValue(rootConfig)));
        return ProgramCommandLine.HostsDaemon(serve);
    }

    public static Task<int> RunAsync(string? configPath) =>
        AgentDaemon.RunAsync(DaemonInfo.BuilderAgent, configPath, DefaultMetricsPort, Configure);

    internal static void Configure(HostApplicationBuilder builder)
    {
        builder.Services.AddValidatedOptions<BuilderOptions>(builder.Configuration, BuilderOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<BuilderOptions>>().Value;
            var credentials = BuilderDocker.ReadDockerConfig(o.DockerConfig);
            foreach (var (host, login) in o.Credentials)
            {
                credentials[host] = new RegistryCredential(login.Username, login.Password);
            }

            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Toolforge.Agents.BuilderAgent.Docker");
            return new BuilderDocker(o.DockerEndpoint, o.CallTimeout, o.BuildTimeout, credentials)
            {
                // The daemon says it too (the CLI prints it): the check's sweep removes it later.
                ProbeLeftBehind = (id, why) => Log.LeftBehind(logger, id[..Math.Min(12, id.Length)], RegistryClient.Safe(why)),
            };
        });
        builder.Services.AddGitPolling(builder.Configuration);
        builder.Services.AddPromotion(builder.Configuration);
        builder.Services.AddInventory();
        builder.Services.AddHostedService<BuildQueueService>();
        builder.Services.AddHostedService<DockerHealthService>();
        builder.Services.AddValidatedOptions<Hygiene.HygieneOptions>(builder.Configuration, Hygiene.HygieneOptions.Section, (c, o) => c.Bind(o));
        if (OptionsRegistration.GetExactly<Hygiene.HygieneOptions>(builder.Configuration.GetSection(Hygiene.HygieneOptions.Section), (c, o) => c.Bind(o)).Enabled)
        {
            builder.Services.AddHostedService<Hygiene.HygieneCheck>();
        }

        builder.Services.AddValidatedOptions<Hygiene.DiskOptions>(builder.Configuration, Hygiene.DiskOptions.Section, (c, o) => c.Bind(o));
        if (OptionsRegistration.GetExactly<Hygiene.DiskOptions>(builder.Configuration.GetSection(Hygiene.DiskOptions.Section), (c, o) => c.Bind(o)).Enabled)
        {
            builder.Services.AddHostedService<Hygiene.DiskCheck>();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(4016, LogLevel.Warning, "container {Id} (a probe or an image's inventory read) could not be removed: {Why} (an inventory read's is removed by the builder.docker check later)")]
        public static partial void LeftBehind(ILogger logger, string id, string why);
    }
}
