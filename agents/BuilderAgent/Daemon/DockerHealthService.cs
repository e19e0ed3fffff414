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
internal sealed partial class DockerHealthService(BuilderDocker docker, AgentState state, IOptions<BuilderOptions> options, TimeProvider time, ILogger<DockerHealthService> logger)
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
        await SweepAsync(ct).ConfigureAwait(false);
    }

    /// <summary>A container made to read an image's files lives seconds: one older than this was left behind.</summary>
    public static readonly TimeSpan LeftBehindAfter = TimeSpan.FromMinutes(10);

    // The containers made to read image files that were left behind (a removal that failed, a creation that timed out
    // after the engine made one): removed, each said in one line.
    private async Task SweepAsync(CancellationToken ct)
    {
        try
        {
            foreach (var (id, failed) in await docker.SweepReadContainersAsync(LeftBehindAfter, Time.GetUtcNow(), ct).ConfigureAwait(false))
            {
                if (failed is null)
                {
                    Log.Swept(logger, id[..Math.Min(12, id.Length)]);
                }
                else
                {
                    Log.NotSwept(logger, id[..Math.Min(12, id.Length)], Promotion.RegistryClient.Safe(failed));
                }
            }
        }
        catch (DockerOperationException ex)
        {
            Log.NotSwept(logger, "(list)", Promotion.RegistryClient.Safe(ex.Message)); // tried again at the next run
        }
    }

    private static partial class Log
    {
        [LoggerMessage(4014, LogLevel.Information, "removed container {Id}, left behind by an image's inventory read")]
        public static partial void Swept(ILogger logger, string id);

        [LoggerMessage(4015, LogLevel.Warning, "container {Id}, left behind by an image's inventory read, could not be removed: {Why}; tried again at the next check")]
        public static partial void NotSwept(ILogger logger, string id, string why);
    }
}
