using System.Net;
using System.Security.Authentication;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Coordinator.Api;
using Toolforge.Agents.Coordinator.Reports;
using Toolforge.Agents.Coordinator.Builds;
using Toolforge.Agents.Coordinator.Cluster;
using Toolforge.Agents.Coordinator.Maintenance;
using Toolforge.Agents.Coordinator.Remediation;
using Toolforge.Agents.Coordinator.Security;
using Toolforge.Agents.Coordinator.State;
using Toolforge.Agents.Coordinator.Storage;

namespace Toolforge.Agents.Coordinator.Hosting;

/// <summary>Builds the coordinator: Kestrel (HTTP/2 over mutual TLS only), the two gRPC services, SQLite and the sweeper.</summary>
public static class CoordinatorApp
{
    public const int DefaultMetricsPort = 9501;

    public static WebApplication Build(string? configPath, Action<IServiceCollection>? overrides = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ContentRootPath = AppContext.BaseDirectory,
            ApplicationName = "toolforge-coordinator",
        });
        AddConfiguration(builder, configPath);
        var services = builder.Services;
        overrides?.Invoke(services);

        // The engine is decided once, here and in CoordinatorStorage.Open, from the same key (an unknown one stops the
        // start with exit 78 in validation): what only several instances sharing PostgreSQL need is registered only then.
        var engine = StoreKinds.Parse(builder.Configuration[$"{StorageOptions.Section}:{nameof(StorageOptions.Store)}"] ?? StoreKinds.SqliteName) ?? StoreKind.Sqlite;
        // One line per feature folder (each registers what it owns; TryAdd, so a test's overrides above win).
        services.AddNodeState();
        services.AddReportIngest();
        services.AddBuilds();
        services.AddRemediation();
        services.AddSecurity(builder.Configuration);
        services.AddMaintenance();
        services.AddCluster(engine);
        services.AddCoordinatorStorage(engine);
        services.Configure<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckPublisherOptions>(o =>
        {
            o.Delay = TimeSpan.FromMilliseconds(100);
            o.Period = TimeSpan.FromSeconds(1); // Watch callers of the health service hear NOT_SERVING within a second
        });

        services.AddGrpc(o =>
        {
            o.Interceptors.Add<StoreUnavailableInterceptor>();
            o.MaxReceiveMessageSize = 8 * 1024 * 1024;
            o.EnableDetailedErrors = false;
        });
        services.AddGrpcHealthChecks().AddCheck<StoreHealth>("database");

        builder.WebHost.ConfigureKestrel(k =>
        {
            OptionsGate.ValidateAll(k.ApplicationServices);
            var o = k.ApplicationServices.GetRequiredService<IOptions<CoordinatorOptions>>().Value;
            var tls = k.ApplicationServices.GetRequiredService<IOptions<SecurityOptions>>().Value;
            var validator = k.ApplicationServices.GetRequiredService<ClientCertificateValidator>();
            // Renewed by puppet under the running coordinator: each handshake presents the pair the files hold now
            // (looked at once a second; a half-written pair keeps the one loaded before).
            var logger = k.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("Toolforge.Agents.Coordinator.Tls");
            var certificate = new ReloadingFiles<System.Security.Cryptography.X509Certificates.X509Certificate2>([tls.Certificate, tls.Key],
                () => Certificates.LoadWithKey(tls.Certificate, tls.Key), reason =>
                {
                    CoordinatorLog.ReloadFailures.Inc();
                    CoordinatorLog.CertificateNotReloaded(logger, "Coordinator:Certificate/Key", reason);
                });
            _ = certificate.Current; // loaded (and checked) before listening
            k.AddServerHeader = false;
            k.Limits.Http2.MaxStreamsPerConnection = 1000;
            k.Listen(IPAddress.Parse(o.ListenAddress), o.Port, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificateSelector = (_, _) => certificate.Current,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    ClientCertificateValidation = (cert, chain, _) => validator.Validate(cert, chain),
                    SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    HandshakeTimeout = TimeSpan.FromSeconds(10),
                });
            });
        });

        var app = builder.Build();
        app.MapGrpcService<AgentApi>();
        app.MapGrpcService<AdminApi>();
        app.MapGrpcHealthChecksService();

        // Migrate and load state before Kestrel accepts anything; a PostgreSQL that does not answer yet is waited for
        // (NOT_SERVING meanwhile), not a crash.
        app.Services.GetRequiredService<StoreStartup>().TryStartNow();
        return app;
    }

    /// <summary>The coordinator's configuration: the file (or --config), TOOLFORGE_ variables, every options section.</summary>
    public static void AddConfiguration(IHostApplicationBuilder builder, string? configPath)
    {
        builder.AddAgentDefaults(DaemonInfo.Coordinator, configPath, DefaultMetricsPort);
        // One flat "Coordinator" section in the file; each feature binds and checks its own keys of it.
        builder.Services.AddValidatedOptions<CoordinatorOptions>(builder.Configuration, CoordinatorOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddValidatedOptions<SecurityOptions>(builder.Configuration, SecurityOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddValidatedOptions<StorageOptions>(builder.Configuration, StorageOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddValidatedOptions<StateOptions>(builder.Configuration, StateOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddValidatedOptions<Builds.SecurityRebuildOptions>(builder.Configuration, Builds.SecurityRebuildOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddValidatedOptions<Reports.IngestOptions>(builder.Configuration, Reports.IngestOptions.Section, (c, o) => c.Bind(o));
        builder.Services.AddValidatedOptions<Remediation.RemediationOptions>(builder.Configuration, Remediation.RemediationOptions.Section, (c, o) => c.Bind(o));
    }

    /// <summary>The port Kestrel actually bound (for Port = 0 in tests).</summary>
    public static int BoundPort(WebApplication app)
    {
        var address = app.Urls.FirstOrDefault() ?? throw new InvalidOperationException("the coordinator is not listening");
        return new Uri(address.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal)).Port;
    }
}
