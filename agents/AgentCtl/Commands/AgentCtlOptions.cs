using System.CommandLine;
using Grpc.Core;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>
/// What every agentctl command shares: the connection flags (or ~/.config/agentctl/config.json), the output flag,
/// and one way to run a call: a one-line message and exit 1 when it fails.
/// </summary>
internal sealed class AgentCtlOptions
{
    public Option<string?> Server { get; } = new("--server") { Description = "Coordinator address, https://HOST:PORT (several, comma-separated: tried in turn)", Recursive = true };

    public Option<string?> Cert { get; } = new("--cert") { Description = "Client certificate (PEM)", Recursive = true };

    public Option<string?> Key { get; } = new("--key") { Description = "Client private key (PEM)", Recursive = true };

    public Option<string?> Ca { get; } = new("--ca") { Description = "CA bundle the coordinator's certificate must chain to", Recursive = true };

    public Option<string?> Config { get; } = new("--config") { Description = $"Settings file (default {ClientConfig.DefaultPath})", Recursive = true };

    public Option<double> Timeout { get; } = new("--timeout") { Description = "Seconds to wait for the coordinator", DefaultValueFactory = _ => 10, Recursive = true };

    public IEnumerable<Option> All => [Server, Cert, Key, Ca, Config, Timeout];

    public static Option<string> Output()
    {
        var o = new Option<string>("--output", "-o") { Description = "table, json or yaml", DefaultValueFactory = _ => "table" };
        o.AcceptOnlyFromAmong("table", "json", "yaml");
        return o;
    }

    public static void Print(string text) => Console.Out.Write(text);

    public GlobalSettings Settings(ParseResult pr) => new(pr.GetValue(Server), pr.GetValue(Cert), pr.GetValue(Key), pr.GetValue(Ca),
        pr.GetValue(Config), TimeSpan.FromSeconds(Math.Max(0.1, pr.GetValue(Timeout))));

    /// <summary>Runs <paramref name="action"/> on a connection: 0, or 1 with one line on stderr saying what went wrong.</summary>
    public async Task<int> Run(ParseResult pr, Func<Connection, Task> action)
    {
        var settings = Settings(pr);
        Connection? connection = null;
        try
        {
            connection = new Connection(settings);
            for (var tried = 1; ; tried++)
            {
                try
                {
                    await action(connection);
                    return Common.Hosting.ExitCodes.Ok;
                }
                catch (RpcException ex) when (tried < connection.ServerCount && Connection.NeverReached(ex))
                {
                    connection.Failover(); // that instance is down: the same call to the next one
                }
            }
        }
        catch (CliException ex)
        {
            await Console.Error.WriteLineAsync($"agentctl: {ex.Message}");
        }
        catch (RpcException ex)
        {
            await Console.Error.WriteLineAsync($"agentctl: {Connection.Describe(ex, connection?.Server ?? settings.Server ?? "the coordinator", settings.Timeout)}");
        }
        finally
        {
            connection?.Dispose();
        }

        return Common.Hosting.ExitCodes.Failed;
    }
}
