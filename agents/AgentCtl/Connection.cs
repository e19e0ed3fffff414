using System.Net.Sockets;
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
        catch (Common.Tls.TlsFileException ex)
        {
            // The file named by what the admin gave: the flag, or the key of the config file.
            var (flag, key, given) = ex.What switch
            {
                "certificate" => ("--cert", "cert", Settings.Cert),
                "key" => ("--key", "key", Settings.Key),
                _ => ("--ca", "ca", Settings.Ca),
            };
            throw new CliException($"{(given is not null ? flag : $"\"{key}\" in {Settings.ConfigPath ?? ClientConfig.DefaultPath}")}: {ex.Path} {ex.Reason}");
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

    /// <summary>One line that says what went wrong, in the words an admin would use, naming agentctl's flags.</summary>
    public static string Describe(RpcException ex, string server, TimeSpan timeout) => RpcFailure.Describe(ex, server, timeout, Flags);

    private static readonly RpcFailure.Names Flags = new("--ca (or the config's \"ca\")", "--cert", "--server");
}
