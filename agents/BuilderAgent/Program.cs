using Toolforge.Agents.Common.Hosting;

// toolforge-builder-agent [--config PATH]
return await AgentDaemon.RunAsync(DaemonInfo.BuilderAgent, args, defaultMetricsPort: 9503, configure: _ => { });
