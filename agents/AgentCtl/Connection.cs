using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Net.Client;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.AgentCtl;

/// <summary>The admin client made from flags and the config file, and plain-English translations of what can go wrong.</summary>
internal sealed class Connection : IDisposable
{
    private readonly GrpcChannel _channel;

    public Connection(GlobalSettings settings)
    {
        Settings = settings;
        var config = ClientConfig.Load(settings.ConfigPath);
        Server = settings.Server ?? config.Server ?? throw new CliException(
            $"no coordinator address: pass --server https://HOST:PORT or set \"server\" in {settings.ConfigPath ?? ClientConfig.DefaultPath}");
        var cert = settings.Cert ?? config.Cert ?? throw new CliException("no client certificate: pass --cert or set \"cert\" in the config file");
        var key = settings.Key ?? config.Key ?? throw new CliException("no client key: pass --key or set \"key\" in the config file");
        var ca = settings.Ca ?? config.Ca ?? throw new CliException("no CA bundle: pass --ca or set \"ca\" in the config file");
        if (!Uri.TryCreate(Server, UriKind.Absolute, out var uri) || uri.Scheme != "https")
        {
            throw new CliException($"--server: \"{Server}\" is not an https:// address");
        }

        try
        {
            _channel = CoordinatorChannel.Create(Server, cert, key, ca, settings.Timeout);
        }
        catch (CryptographicException ex)
        {
            throw new CliException(ex.Message);
        }

        Admin = new AdminService.AdminServiceClient(_channel);
    }

    public GlobalSettings Settings { get; }

    public string Server { get; }

    public AdminService.AdminServiceClient Admin { get; }

    public DateTime Deadline() => DateTime.UtcNow.Add(Settings.Timeout);

    public void Dispose() => _channel.Dispose();

    /// <summary>One line that says what went wrong, in the words an admin would use.</summary>
    public static string Describe(RpcException ex, string server, TimeSpan timeout) =>
        Common.Cli.Output.Escape(OneLine(DescribeCore(ex, server, timeout)));

    private static string OneLine(string s) => string.Join(' ', s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static string DescribeCore(RpcException ex, string server, TimeSpan timeout)
    {
        switch (ex.StatusCode)
        {
            case StatusCode.PermissionDenied:
                return $"permission denied: {ex.Status.Detail}";
            case StatusCode.Unauthenticated:
                return $"not authenticated: {ex.Status.Detail}";
            case StatusCode.NotFound:
                return $"not found: {ex.Status.Detail}";
            case StatusCode.InvalidArgument:
                return $"invalid request: {ex.Status.Detail}";
            case StatusCode.DeadlineExceeded:
                return $"{server} did not answer within {timeout.TotalSeconds:0.#}s";
            default:
                break;
        }

        for (Exception? e = ex.Status.DebugException; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused }:
                    return $"cannot connect to {server}: connection refused (is the coordinator running?)";
                case SocketException s:
                    return $"cannot connect to {server}: {s.Message}";
                case AuthenticationException a:
                    return $"TLS handshake with {server} failed: {a.Message} (the server's certificate is not from the configured CA, or ours was rejected)";
                default:
                    break;
            }
        }

        var detail = ex.Status.DebugException?.GetBaseException().Message ?? ex.Status.Detail;
        if (ex.StatusCode == StatusCode.Unavailable || ex.StatusCode == StatusCode.Internal)
        {
            // A client certificate refused by the server shows up as the connection closing during or right after the handshake.
            if (detail.Contains("SSL", StringComparison.OrdinalIgnoreCase) || detail.Contains("EOF", StringComparison.OrdinalIgnoreCase)
                || detail.Contains("reset", StringComparison.OrdinalIgnoreCase) || detail.Contains("HTTP/2", StringComparison.OrdinalIgnoreCase)
                || detail.Contains("handshake", StringComparison.OrdinalIgnoreCase) || detail.Contains("certificate", StringComparison.OrdinalIgnoreCase))
            {
                return $"certificate rejected: {server} closed the connection during the TLS handshake ({detail})";
            }
        }

        return $"{ex.StatusCode}: {detail}";
    }
}
