using Toolforge.Agents.Common.Hosting;

// toolforge-log-shipper [--config PATH]
return await AgentDaemon.RunAsync(DaemonInfo.LogShipper, args, defaultMetricsPort: 9504, configure: _ => { });
