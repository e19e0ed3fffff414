using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Hosting;

namespace Toolforge.Agents.NodeAgent.Cli;

/// <summary>
/// toolforge-node-agent's command line: the daemon (no subcommand), `check` and the offline audits. The wiring is
/// <see cref="NodeAgentServiceCollectionExtensions.AddNodeAgent"/>, the same for the daemon and `check`.
/// </summary>
internal static class NodeAgentHost
{
    public const int DefaultMetricsPort = 9502;

    public static Task<int> RunAsync(string[] args)
    {
        var daemon = DaemonInfo.NodeAgent;
        var root = ProgramCommandLine.Root(daemon.Name,
            "toolforge-node-agent: kubelet and container runtime health, kube-proxy's rules against the Services, tenant policy, "
            + $"journal rules, guarded remediation. With no subcommand it runs the daemon, reading {daemon.DefaultConfigPath} (or --config).");
        var config = ProgramCommandLine.ConfigOption(daemon);
        root.Options.Add(config);
        ProgramCommandLine.HostsDaemon(root);
        root.SetAction((pr, _) => AgentDaemon.RunAsync(daemon, pr.GetValue(config), DefaultMetricsPort, Configure));
        root.Subcommands.Add(AuditCommand.Create(config));
        root.Subcommands.Add(CheckCommand.Create(config));
        return ProgramCommandLine.InvokeAsync(root, args);
    }

    /// <summary>
    /// The daemon's host built from <paramref name="configPath"/> (or the default file) and its options checked as the
    /// daemon checks them at start, not started: what `check` runs and what the offline audits take their settings from.
    /// Throws what <see cref="AgentHost.Describe"/> turns into the one line of a bad configuration.
    /// </summary>
    public static IHost BuildOneShot(string? configPath)
    {
        var builder = AgentDaemon.CreateBuilder(DaemonInfo.NodeAgent, configPath, DefaultMetricsPort);
        Configure(builder);
        var host = builder.Build();
        try
        {
            OptionsGate.ValidateAll(host.Services);
            return host;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>The daemon's wiring (and `check`'s): the agent defaults come from AgentDaemon, the rest is the node-agent.</summary>
    public static void Configure(HostApplicationBuilder builder) => builder.Services.AddNodeAgent(builder.Configuration);
}
