using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Toolforge.Agents.BuilderAgent.Daemon;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.BuilderAgent.Promotion;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>
/// The daemon's own settings for the commands that must act exactly as the daemon would (`verify`, `promote`): the
/// configuration file is read, bound and validated as `serve` does it (a bad one: one line, exit 78), and the
/// registry, prefix, Docker endpoint, credentials, probes and verdict file come from there, not from flags.
/// </summary>
internal sealed class ConfiguredBuilder(BuilderOptions builder, PromotionOptions promotion, BuilderDocker docker)
{
    public BuilderOptions Builder { get; } = builder;

    public PromotionOptions Promotion { get; } = promotion;

    public BuilderDocker Docker { get; } = docker;

    public NamingOptions Naming => new(Builder.Registry, Builder.ImagePrefix, TagPolicy.Testing);

    public VerifiedStore Store => new(Promotion.StateFile);

    public RegistryClient Registry() =>
        new(Builder.Registry, Docker.Credentials.GetValueOrDefault(Builder.Registry), Promotion.RegistryTimeout);

    public static async Task<int> RunAsync(string? configPath, Func<ConfiguredBuilder, Task<int>> action)
    {
        IHost host;
        try
        {
            var builder = AgentDaemon.CreateBuilder(DaemonInfo.BuilderAgent, configPath, BuilderDaemon.DefaultMetricsPort);
            BuilderDaemon.Configure(builder);
            host = builder.Build();
            OptionsGate.ValidateAll(host.Services);
        }
        catch (Exception ex) when (AgentHost.Describe(ex) is { } line)
        {
            await Console.Error.WriteLineAsync($"{DaemonInfo.BuilderAgent.Name}: invalid configuration: {line}");
            return ExitCodes.Config;
        }

        using (host)
        {
            var s = host.Services;
            var configured = new ConfiguredBuilder(s.GetRequiredService<IOptions<BuilderOptions>>().Value,
                s.GetRequiredService<IOptions<PromotionOptions>>().Value, s.GetRequiredService<BuilderDocker>());
            configured.Docker.ProbeLeftBehind = (id, why) => Console.Error.WriteLine($"{DaemonInfo.BuilderAgent.Name}: probe container {id[..Math.Min(12, id.Length)]} could not be removed: {RegistryClient.Safe(why)}");
            return await BuilderCli.Guard(() => action(configured));
        }
    }
}
