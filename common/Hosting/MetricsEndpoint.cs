using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Prometheus;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Common.Hosting;

/// <summary>The "Metrics" section: where /metrics is served (loopback by default; 0 turns it off).</summary>
public sealed class MetricsOptions : IValidatedOptions
{
    public const string Section = "Metrics";

    public string Address { get; set; } = "127.0.0.1";

    public int Port { get; set; }

    public IEnumerable<string> Validate(string section)
    {
        foreach (var p in Check.Port(section, nameof(Port), Port, allowZero: true))
        {
            yield return p;
        }

        if (!System.Net.IPAddress.TryParse(Address, out _) && Address != "localhost" && Address != "+" && Address != "*")
        {
            yield return $"{Check.Key(section, nameof(Address))}: must be an IP address such as 127.0.0.1 (got \"{Address}\")";
        }
    }
}

/// <summary>Serves prometheus-net's registry on http://Address:Port/metrics.</summary>
public sealed partial class MetricsEndpoint(IOptions<MetricsOptions> options, ILogger<MetricsEndpoint> logger) : IHostedService, IDisposable
{
    private MetricServer? _server;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (o.Port == 0)
        {
            return Task.CompletedTask;
        }

        _server = new MetricServer(o.Address, o.Port, "metrics/");
        try
        {
            _server.Start();
        }
        catch (Exception ex) when (ex is System.Net.HttpListenerException or InvalidOperationException)
        {
            // Known before the daemon serves anything, and not cured by a restart: a configuration problem (exit 78).
            throw new ConfigurationProblemException($"{MetricsOptions.Section}:{nameof(MetricsOptions.Port)}: cannot serve /metrics on {o.Address}:{o.Port}: {ex.Message}");
        }

        Log.Serving(logger, o.Address, o.Port);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            await _server.StopAsync().ConfigureAwait(false);
        }
    }

    public void Dispose() => _server?.Dispose();

    private static partial class Log
    {
        [LoggerMessage(1002, LogLevel.Information, "serving Prometheus metrics on http://{Address}:{Port}/metrics")]
        public static partial void Serving(ILogger logger, string address, int port);
    }
}
