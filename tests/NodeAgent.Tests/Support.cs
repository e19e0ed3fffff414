using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Reporting;

namespace Toolforge.Agents.NodeAgent.Tests;

internal static class Support
{
    public static AgentState State(TimeProvider? time = null) => new(time ?? TimeProvider.System, NullLogger<AgentState>.Instance);

    /// <summary>A feature's own options, as the daemon injects them (each feature binds its own section).</summary>
    public static IOptions<T> Options<T>(T options)
        where T : class => Microsoft.Extensions.Options.Options.Create(options);
}
