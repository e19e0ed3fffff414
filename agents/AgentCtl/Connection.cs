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
    private readonly IReadOnlyList<string> _servers;
    private readonly string _cert;
    private readonly string _key;
    private readonly string _ca;
    private GrpcChannel _channel;
    private int _current;

    public Connection(GlobalSettings settings)
    {
        Settings = settings;
        var config = ClientConfig.Load(settings.ConfigPath);
        var servers = settings.Server ?? config.Server ?? throw new CliException(
            $"no coordinator address: pass --server https://HOST:PORT or set \"server\" in {settings.ConfigPath ?? ClientConfig.DefaultPath}");
        _cert = settings.Cert ?? config.Cert ?? throw new CliException("no client certificate: pass --cert or set \"cert\" in the config file");
        _key = settings.Key ?? config.Key ?? throw new CliException("no client key: pass --key or set \"key\" in the config file");
        _ca = settings.Ca ?? config.Ca ?? throw new CliException("no CA bundle: pass --ca or set \"ca\" in the config file");
        _servers = ParseServers(servers);
        Common.Tls.SystemTrust.NarrowTo(_ca); // a short-lived process: skip loading the whole system store (see there)
        _channel = Open(_servers[0]);
        Admin = new AdminService.AdminServiceClient(_channel);
    }

    /// <summary>One address, or several separated by commas (instances without a load balancer), each https://.</summary>
    public static IReadOnlyList<string> ParseServers(string servers)
    {
        var list = servers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (list.Length == 0)
        {
            throw new CliException("--server: no address given");
        }

        foreach (var s in list)
        {
            if (!Uri.TryCreate(s, UriKind.Absolute, out var uri) || uri.Scheme != "https")
            {
                throw new CliException($"--server: \"{s}\" is not an https:// address");
            }
        }

        return list;
    }

    private GrpcChannel Open(string server)
    {
        try
        {
            return CoordinatorChannel.Create(server, _cert, _key, _ca, Settings.Timeout);
        }
        catch (CryptographicException ex)
        {
            throw new CliException(ex.Message);
        }
    }

    public GlobalSettings Settings { get; }

    /// <summary>The address calls go to now.</summary>
    public string Server => _servers[_current];

    public int ServerCount => _servers.Count;

    public AdminService.AdminServiceClient Admin { get; private set; }

    /// <summary>Moves to the next address (after one could not be reached).</summary>
    public void Failover()
    {
        _current = (_current + 1) % _servers.Count;
        _channel.Dispose();
        _channel = Open(_servers[_current]);
        Admin = new AdminService.AdminServiceClient(_channel);
    }

    /// <summary>Whether the call never reached a coordinator (so it is safe to make it again elsewhere).</summary>
    public static bool NeverReached(RpcException ex)
    {
        if (ex.StatusCode != StatusCode.Unavailable)
        {
            return false;
        }

        for (Exception? e = ex.Status.DebugException; e is not null; e = e.InnerException)
        {
            if (e is SocketException or HttpRequestException { HttpRequestError: System.Net.Http.HttpRequestError.ConnectionError })
            {
                return true;
            }
        }

        return false;
    }

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
                case AuthenticationException a when a.Message.Contains("remote certificate", StringComparison.OrdinalIgnoreCase):
                    return $"TLS handshake with {server} failed: its certificate is not trusted: not signed by the CA in --ca (or the config's \"ca\"), or not for this name ({a.Message})";
                case AuthenticationException a when a.Message.Contains("frame", StringComparison.OrdinalIgnoreCase):
                    return $"{server} does not speak TLS (is that the coordinator's port?): {a.Message}";
                case AuthenticationException a:
                    return $"TLS handshake with {server} failed: {a.Message} (the server's certificate is not from the configured CA, or ours was rejected)";
                case System.Net.Http.HttpIOException { HttpRequestError: System.Net.Http.HttpRequestError.ResponseEnded }:
                    // TLS 1.3: the server checks our certificate after the handshake and closes the connection before any answer.
                    return $"certificate rejected: {server} refused our client certificate (it closed the connection right after the TLS handshake): is it signed by the coordinator's CA, not revoked, and allowed for client authentication?";
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
                return $"certificate rejected: {server} closed the connection during the TLS handshake: it refused our client certificate (is it signed by the coordinator's CA, not revoked, and allowed for client authentication?) ({detail})";
            }
        }

        return $"{ex.StatusCode}: {detail}";
    }
}
