using System.CommandLine;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.LogShipper;
using Toolforge.Agents.LogShipper.Cli;

// toolforge-log-shipper [--config PATH]     the daemon
// toolforge-log-shipper ship ...             ship journal files once
if (args.Length > 0 && args[0] == "ship")
{
    return await new RootCommand("toolforge-log-shipper") { ShipCommand.Create() }.Parse(args).InvokeAsync();
}

return await AgentDaemon.RunAsync(DaemonInfo.LogShipper, args, ShipperService.DefaultMetricsPort, ShipperService.Configure);
