using System.Reflection;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.Common.Hosting;

/// <summary>Who a daemon is: its installed name, its configuration file's name and the agent kind it reports as.</summary>
public sealed record DaemonInfo(string Name, string ConfigName, AgentKind Kind)
{
    public static readonly DaemonInfo Coordinator = new("toolforge-coordinator", "coordinator", AgentKind.Unspecified);
    public static readonly DaemonInfo NodeAgent = new("toolforge-node-agent", "node-agent", AgentKind.Node);
    public static readonly DaemonInfo BuilderAgent = new("toolforge-builder-agent", "builder-agent", AgentKind.Builder);
    public static readonly DaemonInfo LogShipper = new("toolforge-log-shipper", "log-shipper", AgentKind.LogShipper);

    public const string ConfigDirectory = "/etc/toolforge-agents";

    public string DefaultConfigPath => OperatingSystem.IsWindows()
        ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.CommonApplicationData), "toolforge-agents", ConfigName + ".json")
        : Path.Combine(ConfigDirectory, ConfigName + ".json");

    /// <summary>
    /// The version --version prints and the agents report: the packages' Debian version (0.1.0+gitN.SHA, given by
    /// packaging/debian/build-debs.sh), or VersionPrefix in a build outside the packaging.
    /// </summary>
    public static string Version { get; } =
        typeof(DaemonInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? "0.0.0";
}
