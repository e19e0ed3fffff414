using System.CommandLine;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.NodeAgent;
using Toolforge.Agents.NodeAgent.Cli;

// toolforge-node-agent [--config PATH]           the daemon
// toolforge-node-agent audit iptables ...         the NAT audit offline
if (args.Length > 0 && args[0] == "audit")
{
    var root = new RootCommand("toolforge-node-agent") { AuditCommand.Create() };
    return await root.Parse(args).InvokeAsync();
}

return await AgentDaemon.RunAsync(DaemonInfo.NodeAgent, args, NodeAgentDaemon.DefaultMetricsPort, NodeAgentDaemon.Configure);
