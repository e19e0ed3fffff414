using Toolforge.Agents.LogShipper.Cli;
using Toolforge.Agents.LogShipper.Delivery;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.LogShipper.Tests;

public sealed partial class TlsMaterialTests
{
    [Fact]
    public async Task Daemon_ShippingFailsUnexpectedly_StopsWithExitCode1_NotALiveDaemonThatShipsNothing()
    {
        var logs = new ListLoggerProvider();
        var result = await AgentHost.RunAsync(Common.Hosting.DaemonInfo.LogShipper, () =>
        {
            var builder = new HostApplicationBuilder(AgentHost.Settings());
            builder.Logging.ClearProviders();
            builder.Logging.AddProvider(logs);
            builder.Services.AddSingleton(TimeProvider.System);
            builder.Services.AddSingleton(sp => new AgentState(TimeProvider.System, NullLogger<AgentState>.Instance));
            builder.Services.AddHostedService(sp => new ShipperService(
                Microsoft.Extensions.Options.Options.Create(new ShipperOptions { StateFile = Path.Combine(Path.GetTempPath(), "never-written") }),
                Microsoft.Extensions.Options.Options.Create(new Journal.JournalOptions()),
                sp.GetRequiredService<AgentState>(), TimeProvider.System, sp.GetRequiredService<ILogger<ShipperService>>())
            {
                RunShipper = (_, _) => throw new InvalidOperationException("a bug"),
            });
            return builder.Build();
        }).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(ExitCodes.Failed, result);
        Assert.Contains(logs.Lines, l => l.Level == LogLevel.Critical && l.Message.StartsWith("shipping failed unexpectedly", StringComparison.Ordinal) && l.Exception?.Message == "a bug");
    }
}
