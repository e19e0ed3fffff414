using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.Coordinator.Hosting;

/// <summary>toolforge-coordinator's command line: with no subcommand, the daemon (<see cref="CoordinatorApp"/>).</summary>
public static class CoordinatorHost
{
    /// <summary>Kestrel's "address already in use" names the keys that chose the address (exit 78, not a restart loop).</summary>
    private static string? DescribeListenFailure(Exception ex) =>
        ex is IOException { InnerException: { } inner } io && inner.GetType().Name == "AddressInUseException"
            ? $"{CoordinatorOptions.Section}:{nameof(CoordinatorOptions.ListenAddress)}/{nameof(CoordinatorOptions.Port)}: {io.Message}"
            : null;

    public static Task<int> RunAsync(string[] args)
    {
        var daemon = DaemonInfo.Coordinator;
        var root = ProgramCommandLine.Root(daemon.Name,
            "toolforge-coordinator: the gRPC server (mutual TLS) the toolforge agents report to and admins ask with agentctl. "
            + $"With no subcommand it runs the daemon, reading {daemon.DefaultConfigPath} (or --config).");
        var config = ProgramCommandLine.ConfigOption(daemon);
        root.Options.Add(config);
        ProgramCommandLine.HostsDaemon(root);
        root.SetAction((pr, _) => AgentHost.RunAsync(daemon, () => CoordinatorApp.Build(pr.GetValue(config)), DescribeListenFailure));
        root.Subcommands.Add(Storage.MigrateStoreCommand.Create(config));
        return ProgramCommandLine.InvokeAsync(root, args);
    }
}
