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
        var o = new Option<string>("--output", "-o")
        {
            Description = "table (sized to the terminal), wide (every column, nothing cut), json or yaml (the tables' words: failing, error, node-agent)",
            DefaultValueFactory = _ => "table",
        };
        o.AcceptOnlyFromAmong("table", "wide", "json", "yaml");
        return o;
    }

    /// <summary>A filter that takes several words, comma-separated or repeated (--state failing,warning --state stale).</summary>
    public static Option<string[]> Words(string name, string description) =>
        new(name) { Description = description + " (comma-separated or repeated)", AllowMultipleArgumentsPerToken = true };

    /// <summary>The words of a <see cref="Words"/> option, each checked by <paramref name="parse"/> (null: not a word it takes).</summary>
    public static List<T> Parse<T>(ParseResult pr, Option<string[]> option, Func<string, T?> parse, string known)
        where T : struct =>
        (pr.GetValue(option) ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(w => parse(w) ?? throw new CliException($"{option.Name}: unknown value \"{Common.Cli.Output.Escape(w)}\" ({known})")).ToList();

    /// <summary>The plain words of a <see cref="Words"/> option.</summary>
    public static HashSet<string> Set(ParseResult pr, Option<string[]> option) =>
        (pr.GetValue(option) ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToHashSet(StringComparer.Ordinal);

    /// <summary>--sort-by with the column names it takes (kubectl's flag; here a column's name rather than a JSONPath).</summary>
    public static Option<string?> SortBy(params string[] columns)
    {
        var o = new Option<string?>("--sort-by") { Description = $"Sort by this column: {string.Join(", ", columns)}" };
        o.AcceptOnlyFromAmong(columns);
        return o;
    }

    public static void Print(string text) => Console.Out.Write(text);

    /// <summary>
    /// The node names the coordinator knows, for shell completion (`agentctl node <TAB>`): asked with the settings
    /// already on the command line (or the config file) and a short deadline. Completion must print nothing but
    /// candidates, so a coordinator that cannot be asked gives none (the command itself says why when it runs).
    /// </summary>
    public IEnumerable<string> NodeNames(ParseResult pr)
    {
        try
        {
            var settings = Settings(pr) with { Timeout = TimeSpan.FromSeconds(2) };
            using var connection = new Connection(settings);
            var response = connection.Admin.ListNodes(new Contracts.V1.ListNodesRequest(), deadline: connection.Deadline());
            // Only DNS names are offered: a certificate's name is whatever its owner put there, and a shell must never
            // be handed `$(...)`, globs or control characters as a candidate.
            return response.Nodes.Select(n => n.Name).Where(n => PkiCommand.Problem(n) is null).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception ex) when (ex is RpcException or CliException or IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or InvalidOperationException)
        {
            return [];
        }
    }

    /// <summary>--chunk-size: how many nodes one message carries (a page of a list, a part of a watch's snapshot), as kubectl's.</summary>
    public static Option<int> ChunkSize(string description)
    {
        var chunk = new Option<int>("--chunk-size") { Description = description, DefaultValueFactory = _ => 500 };
        chunk.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() > 10_000)
            {
                r.AddError("--chunk-size: must be at most 10000");
            }
        });
        return chunk;
    }

    /// <summary>
    /// What a listing prints: the table (or JSON/YAML) — and for an empty table, kubectl's "No resources found"-style
    /// line on stderr instead of a bare header (JSON and YAML print their empty document, for scripts).
    /// </summary>
    public static void PrintListing(Common.Cli.OutputFormat format, int count, string what, Func<string> table, Func<string> document, string? why = null)
    {
        if (format is Common.Cli.OutputFormat.Json or Common.Cli.OutputFormat.Yaml)
        {
            Print(document());
        }
        else if (count == 0)
        {
            Console.Error.WriteLine(why is null ? $"No {what} found." : $"No {what}: {why}.");
        }
        else
        {
            Print(table());
        }
    }

    public GlobalSettings Settings(ParseResult pr) => new(pr.GetValue(Server), pr.GetValue(Cert), pr.GetValue(Key), pr.GetValue(Ca),
        pr.GetValue(Config), TimeSpan.FromSeconds(Math.Max(0.1, pr.GetValue(Timeout))));

    /// <summary>Runs <paramref name="action"/> on a connection: 0; 2 for bad usage or input; 1 when the call failed; one line on stderr saying what went wrong.</summary>
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
            // Bad usage or bad input (a flag's value, the config file, a certificate file): 2, as every program.
            await Console.Error.WriteLineAsync($"agentctl: {ex.Message}");
            return Common.Hosting.ExitCodes.Usage;
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
