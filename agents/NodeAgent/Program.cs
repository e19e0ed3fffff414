using Toolforge.Agents.Common.Hosting;

// toolforge-node-agent [--config PATH]
return await AgentDaemon.RunAsync(DaemonInfo.NodeAgent, args, defaultMetricsPort: 9502, configure: _ => { });
