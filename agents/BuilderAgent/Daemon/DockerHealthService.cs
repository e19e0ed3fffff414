using System.Diagnostics;
using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.BuilderAgent.Build;
using Toolforge.Agents.BuilderAgent.Docker;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.Common.Resilience;

namespace Toolforge.Agents.BuilderAgent.Daemon;

/// <summary>Reports the builder host's Docker health as the check "builder.docker".</summary>
internal sealed class DockerHealthService(BuilderDocker docker, AgentState state, IOptions<BuilderOptions> options, TimeProvider time, ILogger<DockerHealthService> logger)
    : PeriodicCheck(state, time, logger)
{
    public const string Check = "builder.docker";

    protected override IReadOnlyList<string> Names => [Check];

    protected override TimeSpan Interval => options.Value.CheckInterval;

    protected override TimeSpan Timeout => options.Value.CallTimeout + TimeSpan.FromSeconds(5);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            await docker.PingAsync(ct).ConfigureAwait(false);
        }
        catch (DockerOperationException ex)
        {
            throw new PeerUnavailableException($"Docker at {docker.Endpoint}", ex.Message, ex);
        }

        State.Peers.Clear($"Docker at {docker.Endpoint}");
        State.SetCheck(Check, CheckState.Ok, $"Docker answers at {docker.Endpoint}", sw.Elapsed);
    }
}
