using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.LogShipper.Delivery;
using Toolforge.Agents.LogShipper.Journal;

namespace Toolforge.Agents.LogShipper.Cli;

/// <summary>toolforge-log-shipper's command line and wiring: the daemon (no subcommand) and `ship`.</summary>
internal static class LogShipperHost
{
    public const int DefaultMetricsPort = 9504;

    public static Task<int> RunAsync(string[] args)
    {
        var daemon = DaemonInfo.LogShipper;
        var root = ProgramCommandLine.Root(daemon.Name,
            "toolforge-log-shipper: ships this host's systemd journal to the central rsyslog host (RELP over TLS, RELP, RFC 5424 over "
            + $"TCP/TLS), saving its cursor only after delivery. With no subcommand it runs the daemon, reading {daemon.DefaultConfigPath} (or --config).");
        var config = ProgramCommandLine.ConfigOption(daemon);
        root.Options.Add(config);
        ProgramCommandLine.HostsDaemon(root);
        root.SetAction((pr, _) => AgentDaemon.RunAsync(daemon, pr.GetValue(config), DefaultMetricsPort, Configure));
        root.Subcommands.Add(ShipCommand.Create());
        return ProgramCommandLine.InvokeAsync(root, args);
    }

    internal static void Configure(HostApplicationBuilder builder)
    {
        // One "Shipper" section in the file; reading (Journal/) and delivery (Delivery/) each bind and check their keys of it.
        builder.Services.AddValidatedOptions<ShipperOptions>(builder.Configuration, ShipperOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddValidatedOptions<JournalOptions>(builder.Configuration, JournalOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddHostedService<ShipperService>();
    }
}
