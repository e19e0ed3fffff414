using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Toolforge.Agents.Common.Hosting;

namespace Toolforge.Agents.Common.Tests;

/// <summary>A service that stops the daemon with a code (78: do not restart) gets that code as the process's exit code, not 0.</summary>
public sealed class HostExitTests
{
    private sealed class StopsWithConfig(HostExit exit) : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken)
        {
            exit.StopWith(ExitCodes.Config);
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task AServiceThatStopsTheHostWith78_MakesRunAsyncReturn78()
    {
        var code = await AgentHost.RunAsync(DaemonInfo.Coordinator, () =>
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Services.AddSingleton<HostExit>();
            builder.Services.AddHostedService<StopsWithConfig>();
            return builder.Build();
        });
        Assert.Equal(ExitCodes.Config, code);
    }
}
