using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Coordinator;

// toolforge-coordinator [--config PATH]
try
{
    var (configPath, _) = AgentHost.SplitConfigArgument(args);
    return await AgentHost.RunAsync(DaemonInfo.Coordinator, () => CoordinatorApp.Build(configPath));
}
catch (ConfigurationProblemException ex)
{
    await Console.Error.WriteLineAsync($"{DaemonInfo.Coordinator.Name}: invalid configuration: {ex.Message}");
    return AgentHost.ExitConfig;
}
