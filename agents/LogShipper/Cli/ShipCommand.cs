using System.CommandLine;
using Microsoft.Extensions.Logging;
using Serilog;
using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Journal;
using Toolforge.Agents.Common.Logging;
using Toolforge.Agents.LogShipper.Delivery;
using Toolforge.Agents.LogShipper.Journal;

namespace Toolforge.Agents.LogShipper.Cli;

/// <summary>
/// `toolforge-log-shipper ship --journal-file F ... --to relp://HOST:PORT --state-file S [--ca C --cert X --key K]`:
/// ships every entry of the files after the cursor in S, waits for every acknowledgement (RELP) or flush (TCP/TLS),
/// saves the cursor, prints one summary line and exits 0; on a delivery failure exits 1 with the cursor at the last
/// acknowledged entry; 2 on bad input.
/// </summary>
internal static class ShipCommand
{
    public static Command Create()
    {
        var files = new Option<string[]>("--journal-file") { Description = "Journal file(s) to ship", Required = true, AllowMultipleArgumentsPerToken = true };
        var to = new Option<string[]>("--to") { Description = "relp://HOST:PORT, relp+tls://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT (several: failover in order)", Required = true };
        var state = new Option<string>("--state-file") { Description = "Cursor of the last delivered entry (read, then written)", Required = true };
        var ca = new Option<string?>("--ca") { Description = "TLS: CA bundle the receiver must chain to" };
        var cert = new Option<string?>("--cert") { Description = "TLS: client certificate" };
        var key = new Option<string?>("--key") { Description = "TLS: client key" };
        var serverName = new Option<string?>("--server-name") { Description = "TLS: the name the receiver's certificate must carry (default: the host in --to)" };
        var giveUp = new Option<double>("--give-up-after") { Description = "Seconds without delivery before failing", DefaultValueFactory = _ => 60 };
        var window = new Option<int>("--relp-window") { Description = "RELP frames in flight at first (the window grows with the acknowledgement rate)", DefaultValueFactory = _ => 128 };
        giveUp.Validators.Add(r =>
        {
            if (!(r.GetValueOrDefault<double>() > 0))
            {
                r.AddError("--give-up-after: must be a positive number of seconds");
            }
        });
        var cmd = new Command("ship", "Ship journal files to a syslog receiver once, and exit") { files, to, state, ca, cert, key, serverName, giveUp, window };
        cmd.SetAction(async (pr, ct) =>
        {
            var journal = new JournalOptions { JournalFiles = [.. pr.GetValue(files)!] };
            var options = new ShipperOptions
            {
                StateFile = pr.GetValue(state)!,
                StartAt = "head",
                OnUnknownCursor = "head",
                RelpWindow = pr.GetValue(window),
                RelpWindowMax = Math.Max(pr.GetValue(window), new ShipperOptions().RelpWindowMax),
                Destinations = pr.GetValue(to)!.Select(u => new DestinationOptions
                {
                    Url = u,
                    CaBundle = pr.GetValue(ca) ?? string.Empty,
                    Certificate = pr.GetValue(cert) ?? string.Empty,
                    Key = pr.GetValue(key) ?? string.Empty,
                    ServerName = pr.GetValue(serverName) ?? string.Empty,
                }).ToList(),
            };
            // Checked before anything is read or sent: the cursor could not be saved afterwards, and the path is left as it is.
            if (!string.IsNullOrWhiteSpace(options.StateFile) && DurableFile.Problem(options.StateFile) is { } notAFile)
            {
                await Console.Error.WriteLineAsync($"toolforge-log-shipper: --state-file: {notAFile}");
                return ExitCodes.Usage;
            }

            // The options' problems, named by the flag the admin typed (not the daemon's key).
            var problems = options.Validate(string.Empty).Concat(journal.Validate(string.Empty)).Select(FlagFor).Distinct().ToList(); // RelpWindow and RelpWindowMax are both --relp-window
            if (problems.Count > 0)
            {
                await Console.Error.WriteLineAsync($"toolforge-log-shipper: {string.Join("; ", problems)}");
                return ExitCodes.Usage;
            }

            // A file that is not a journal is bad input, said at once; not a delivery to retry until --give-up-after.
            foreach (var file in journal.JournalFiles)
            {
                if (NotAJournal(file) is { } problem)
                {
                    await Console.Error.WriteLineAsync($"toolforge-log-shipper: --journal-file {file}: {problem}");
                    return ExitCodes.Usage;
                }
            }

            using var loggerFactory = LoggerFactory.Create(b => b.AddSerilog(new Serilog.LoggerConfiguration()
                .WriteTo.Console(new PlainFormatter(), standardErrorFromLevel: Serilog.Events.LogEventLevel.Verbose).CreateLogger(), dispose: true));
            var shipper = new Shipper(options, journal, TimeProvider.System, loggerFactory.CreateLogger("ship"));
            bool ok;
            try
            {
                ok = await shipper.RunAsync(follow: false, TimeSpan.FromSeconds(pr.GetValue(giveUp)), ct);
            }
            catch (Exception ex) when (ex is Shipper.JournalReadFailedException or FileNotFoundException or DirectoryNotFoundException)
            {
                await Console.Error.WriteLineAsync($"toolforge-log-shipper: {ex.Message}");
                return ExitCodes.Usage;
            }

            Console.Out.WriteLine($"{(ok ? "shipped" : "FAILED")}: {shipper.Stats}");
            return ok ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>"Destinations:0:Url: ..." → "--to: ...": the daemon's keys as this command's flags.</summary>
    internal static string FlagFor(string problem)
    {
        (string Key, string Flag)[] map =
        [
            ("Url", "--to"), ("CaBundle", "--ca"), ("Certificate", "--cert"), ("Key", "--key"), ("ServerName", "--server-name"),
        ];
        var m = System.Text.RegularExpressions.Regex.Match(problem, @"^Destinations:\d+:(?<key>[A-Za-z]+)(?<rest>:.*)$", System.Text.RegularExpressions.RegexOptions.Singleline);
        if (m.Success)
        {
            var flag = map.FirstOrDefault(x => x.Key == m.Groups["key"].Value).Flag;
            return flag is null ? problem : flag + m.Groups["rest"].Value;
        }

        foreach (var (key, flag) in new[] { ("RelpWindowMax:", "--relp-window:"), ("RelpWindow:", "--relp-window:"), ("StateFile:", "--state-file:"), ("JournalFiles:", "--journal-file:"), ("Destinations:", "--to:") })
        {
            if (problem.StartsWith(key, StringComparison.Ordinal))
            {
                return flag + problem[key.Length..];
            }
        }

        return problem;
    }

    private static string? NotAJournal(string file)
    {
        try
        {
            using var journal = JournalReader.OpenFiles([file]);
            journal.SeekHead();
            journal.Next();
            return null;
        }
        catch (JournalException ex)
        {
            return $"not a journal file ({ex.Message})";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex.Message;
        }
    }
}
