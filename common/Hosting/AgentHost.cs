using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.Events;
using Toolforge.Agents.Common.Logging;
using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.Common.Hosting;

/// <summary>A configuration problem found before the host runs (missing --config file and the like).</summary>
public sealed class ConfigurationProblemException(string message) : Exception(message);

/// <summary>
/// What every daemon shares: configuration from /etc/toolforge-agents/&lt;daemon&gt;.json (or --config PATH) plus
/// TOOLFORGE_* environment variables, options validated at start, Serilog as the logging provider (journal-format
/// console, optional RFC 5424 syslog), systemd (READY/STOPPING and the watchdog) and Windows service lifetimes,
/// and Prometheus /metrics on a loopback port.
/// </summary>
public static class AgentHost
{
    public const string EnvironmentPrefix = "TOOLFORGE_";

    public static HostApplicationBuilderSettings Settings() => new()
    {
        DisableDefaults = true,
        ContentRootPath = AppContext.BaseDirectory,
        ApplicationName = "toolforge-agents",
    };

    public static void AddAgentDefaults(this IHostApplicationBuilder builder, DaemonInfo daemon, string? configPath, int defaultMetricsPort)
    {
        // Relative to the working directory, as an admin typing --config means it (the configuration builder would
        // resolve it against the content root, the program's own directory).
        var path = Path.GetFullPath(configPath ?? daemon.DefaultConfigPath);
        CheckConfigFile(configPath, path);

        builder.Configuration.AddJsonFile(path, optional: configPath is null, reloadOnChange: false);
        builder.Configuration.AddEnvironmentVariables(EnvironmentPrefix);

        var services = builder.Services;
        services.AddSingleton(new OwnConfiguration(() => new ConfigurationBuilder()
            .AddJsonFile(path, optional: configPath is null, reloadOnChange: false)
            .AddEnvironmentVariables(EnvironmentPrefix)
            .Build()));
        services.AddSingleton(daemon);
        services.TryAddSingleton<HostExit>();
        services.TryAddSingleton(TimeProvider.System);

        // Logging: bound eagerly because Serilog is configured before the container exists; validated again at start.
        var logOptions = OptionsRegistration.GetExactly<LogOptions>(builder.Configuration.GetSection(LogOptions.Section), (c, o) => c.Bind(o));
        services.AddValidatedOptions<LogOptions>(builder.Configuration, LogOptions.Section, (c, o) => c.Bind(o));
        builder.Logging.ClearProviders();
        services.AddSerilog((_, lc) => ConfigureSerilog(lc, logOptions, daemon));

        services.AddSystemd();
        if (Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is { Length: > 0 } && !Microsoft.Extensions.Hosting.Systemd.SystemdHelpers.IsSystemdService())
        {
            // AddSystemd recognises systemd by reading /proc/<parent>/comm; with ProtectProc=invisible a service's
            // dynamic user cannot see PID 1, so READY=1 would never be sent. NOTIFY_SOCKET says systemd is waiting.
            services.AddSingleton<Microsoft.Extensions.Hosting.Systemd.ISystemdNotifier, Microsoft.Extensions.Hosting.Systemd.SystemdNotifier>();
            services.AddSingleton<IHostLifetime, Microsoft.Extensions.Hosting.Systemd.SystemdLifetime>();
        }

        services.AddWindowsService(o => o.ServiceName = daemon.Name);
        services.AddHostedService<SystemdWatchdog>();

        services.Configure<MetricsOptions>(o => o.Port = defaultMetricsPort);
        services.AddValidatedOptions<MetricsOptions>(builder.Configuration, MetricsOptions.Section, (c, o) => c.Bind(o));
        services.AddHostedService<MetricsEndpoint>();
        Prometheus.Metrics.SuppressDefaultMetrics(new Prometheus.SuppressDefaultMetricOptions
        {
            SuppressEventCounters = true,
            SuppressMeters = true,
            SuppressDebugMetrics = true,
        });
    }

    public static void ConfigureSerilog(LoggerConfiguration lc, LogOptions options, DaemonInfo daemon)
    {
        lc.MinimumLevel.Is(options.MinimumLevel)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Microsoft.Hosting.Lifetime", LogEventLevel.Information)
            .MinimumLevel.Override("Grpc", LogEventLevel.Warning)
            .MinimumLevel.Override("System.Net.Http", LogEventLevel.Warning)
            // The health check service logs ERR for every unhealthy run (every second while the coordinator's database
            // is away); the coordinator says so itself, once per change (StoreHealth, StoreStartup).
            .MinimumLevel.Override("Microsoft.Extensions.Diagnostics.HealthChecks", LogEventLevel.Fatal)
            .Enrich.FromLogContext();
        var console = options.Console.ToLowerInvariant();
        if (console == "auto")
        {
            // systemd sets JOURNAL_STREAM when the service's output goes to the journal (man systemd.exec).
            console = Environment.GetEnvironmentVariable("JOURNAL_STREAM") is { Length: > 0 } ? "journal" : "plain";
        }

        switch (console)
        {
            case "journal":
                lc.WriteTo.Console(new JournalFormatter());
                break;
            case "plain":
                lc.WriteTo.Console(new PlainFormatter());
                break;
            default:
                break;
        }

        if (options.Syslog.Target.Length > 0 && SyslogTarget.TryParse(options.Syslog.Target, out var target) is null && target is not null)
        {
            lc.WriteTo.Sink(new SyslogSink(target, SyslogFacility.FromName(options.Syslog.Facility) ?? 3, daemon.Name));
        }
    }

    /// <summary>
    /// Builds and runs the host. A configuration problem ends the process with one line on stderr naming the key and
    /// the reason, and exit code 78; a background service that failed makes the exit code 1.
    /// </summary>
    /// <param name="describe">The program's own configuration problems found while starting (a listen address in use).</param>
    public static async Task<int> RunAsync(DaemonInfo daemon, Func<IHost> build, Func<Exception, string?>? describe = null)
    {
        try
        {
            using var host = build();
            await host.StartAsync().ConfigureAwait(false);
            await host.WaitForShutdownAsync().ConfigureAwait(false);
            var failed = host.Services.GetServices<IHostedService>().OfType<BackgroundService>()
                .Any(s => s.ExecuteTask is { IsFaulted: true });
            var asked = host.Services.GetService<HostExit>()?.Code ?? 0;
            return asked != 0 ? asked : failed ? ExitCodes.Failed : ExitCodes.Ok;
        }
        catch (Exception ex) when ((describe?.Invoke(ex) ?? Describe(ex)) is { } line)
        {
            await Console.Error.WriteLineAsync($"{daemon.Name}: invalid configuration: {line}").ConfigureAwait(false);
            return ExitCodes.Config;
        }
    }

    /// <summary>The one line that tells an admin what is wrong with the configuration, or null when it is not that.</summary>
    public static string? Describe(Exception ex) => ex switch
    {
        OptionsValidationException v => string.Join("; ", v.Failures.Select(CutLine)),
        ConfigurationProblemException p => CutLine(p.Message),
        InvalidDataException d when d.Message.StartsWith("Failed to load configuration", StringComparison.Ordinal) =>
            CutLine(FindJsonError(d) is { } json ? $"{d.Message} {json}" : $"{d.Message} {d.InnerException?.Message}".Trim()),
        FormatException f when f.Message.Contains("JSON", StringComparison.OrdinalIgnoreCase) => CutLine(FindJsonError(f) ?? f.Message),
        InvalidOperationException i when ConfigurationValues.DescribeConversion(i) is { } conversion => CutLine(conversion),
        AggregateException a when a.InnerExceptions.Count == 1 => Describe(a.InnerExceptions[0]),
        _ => null,
    };

    /// <summary>"JSON syntax error at line 3, column 5: …" (1-based, as an editor counts) from the parser's exception.</summary>
    private static string? FindJsonError(Exception ex)
    {
        for (var e = ex.InnerException; e is not null; e = e.InnerException)
        {
            if (e is System.Text.Json.JsonException { LineNumber: { } line } j)
            {
                var message = j.Message;
                var at = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
                message = at > 0 ? message[..at] : message;
                return $"JSON syntax error at line {line + 1}, column {(j.BytePositionInLine ?? 0) + 1}: {message}";
            }
        }

        return null;
    }

    /// <summary>A problem line is cut to a sane length: a 50 MB value from a broken template is not echoed back.</summary>
    public static string CutLine(string line) => line.Length <= 1000 ? line : $"{line[..1000]}…[cut {line.Length - 1000} chars]";

    /// <summary>
    /// The configuration file must be a file this process can read: a directory, or one it may not open, is named as
    /// such (the configuration system would call the first "not found" and stop with a stack trace on the second).
    /// </summary>
    public static void CheckConfigFile(string? configPath, string path)
    {
        var label = configPath is null ? path : $"--config: {configPath}";
        if (Directory.Exists(path))
        {
            throw new ConfigurationProblemException($"{label}: is a directory, not a configuration file");
        }

        if (!File.Exists(path))
        {
            if (configPath is not null)
            {
                throw new ConfigurationProblemException($"--config: file {configPath} does not exist");
            }

            return;
        }

        try
        {
            using var _ = File.OpenRead(path);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new ConfigurationProblemException($"{label}: cannot be read: {e.Message}");
        }
    }
}

/// <summary>The usual shape of an agent daemon: defaults, reporting to the coordinator, then the agent's own services.</summary>
public static class AgentDaemon
{
    public static HostApplicationBuilder CreateBuilder(DaemonInfo daemon, string? configPath, int defaultMetricsPort)
    {
        var builder = new HostApplicationBuilder(AgentHost.Settings());
        builder.AddAgentDefaults(daemon, configPath, defaultMetricsPort);
        Reporting.ReportingRegistration.AddReporting(builder.Services, builder.Configuration);
        return builder;
    }

    /// <summary>Runs <paramref name="configure"/>d daemon with the standard error handling (one line, exit 78, for configuration problems).</summary>
    public static Task<int> RunAsync(DaemonInfo daemon, string? configPath, int defaultMetricsPort, Action<HostApplicationBuilder> configure) =>
        AgentHost.RunAsync(daemon, () =>
        {
            var builder = CreateBuilder(daemon, configPath, defaultMetricsPort);
            configure(builder);
            var host = builder.Build();
            OptionsGate.ValidateAll(host.Services);
            return host;
        });
}
