using System.CommandLine;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Checks;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Hosting;
using Toolforge.Agents.NodeAgent.Journal;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.NodeAgent.Cli;

/// <summary>
/// `toolforge-node-agent check [--config F] [--only NAME,...] [-o table|json]`: what an admin runs over ssh, and what
/// a puppet or cookbook step can gate on. The daemon's own wiring and checks, each run once with its timeout; exit 0
/// when every check is ok or does not apply here, 1 when one is failing, warning or unknown, 2 on an unknown name, 78 on a
/// bad configuration.
/// </summary>
internal static class CheckCommand
{
    /// <summary>How much of the journal the journal rules judge in a one-shot run.</summary>
    private static readonly TimeSpan JournalLookback = TimeSpan.FromHours(1);

    /// <param name="config">The program's --config (recursive: it is this subcommand's too, and listed once in its help).</param>
    public static Command Create(Option<string?> config)
    {
        var only = new Option<string[]>("--only") { Description = "Only these checks (comma-separated or repeated), e.g. runtime.containerd", AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--output", "-o") { Description = "table or json", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json");
        var sample = new Option<TimeSpan>("--sample")
        {
            Description = $"How long node.stuck-processes watches for processes stuck in D (default {DefaultSample.TotalSeconds:0} s; "
                + "give NodeAgent:StuckProcesses:After, e.g. 00:02:00, for the daemon's threshold)",
            DefaultValueFactory = _ => DefaultSample,
        };
        sample.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<TimeSpan>() <= TimeSpan.Zero || r.GetValueOrDefault<TimeSpan>() > TimeSpan.FromHours(1))
            {
                r.AddError("--sample: must be a duration between 00:00:01 and 01:00:00");
            }
        });
        var cmd = new Command("check", "Run every enabled check once, print the results and findings; exit 0 when every check is ok or does not apply here, "
            + "1 otherwise, 2 an unknown --only name, 78 bad configuration. "
            + $"The kube-proxy audits report what this run finds: an audit with findings is repeated {FindingConfirmer.OneShotRecheck.TotalSeconds:0} s later "
            + "and the findings both saw are reported (the daemon confirms over two of its intervals instead)")
        {
            only, output, sample,
        };
        cmd.SetAction((pr, ct) => RunAsync(pr.GetValue(config), (pr.GetValue(only) ?? []).SelectMany(o => o.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList(),
            pr.GetValue(output) == "json", pr.GetValue(sample), ct));
        return cmd;
    }

    /// <summary>How long a one-shot run watches for stuck processes unless told otherwise: an answer in seconds.</summary>
    private static readonly TimeSpan DefaultSample = TimeSpan.FromSeconds(5);

    private static async Task<int> RunAsync(string? configPath, IReadOnlyList<string> only, bool json, TimeSpan sample, CancellationToken ct)
    {
        IHost host;
        try
        {
            // The results are the output: the daemon's log lines (state changes) would only repeat them. The log is
            // set up from the configuration before anything else, so this goes in as what overrides the file.
            Environment.SetEnvironmentVariable(AgentHost.EnvironmentPrefix + "Log__Console", "none");
            Environment.SetEnvironmentVariable(AgentHost.EnvironmentPrefix + "Log__Syslog__Target", string.Empty);
            host = NodeAgentHost.BuildOneShot(configPath); // the daemon's own wiring
        }
        catch (Exception ex) when (AgentHost.Describe(ex) is { } line)
        {
            await Console.Error.WriteLineAsync($"toolforge-node-agent: invalid configuration: {line}").ConfigureAwait(false);
            return ExitCodes.Config; // as every program says a bad configuration (README: exit codes)
        }

        using (host)
        {
            var checks = host.Services.GetServices<IHostedService>().OfType<PeriodicCheck>().ToList();
            var known = checks.SelectMany(c => c.CheckNames).ToHashSet(StringComparer.Ordinal);
            if (only.FirstOrDefault(n => !known.Contains(n)) is { } unknown)
            {
                await Console.Error.WriteLineAsync($"toolforge-node-agent: --only {unknown}: no such check here (checks: {string.Join(", ", known.Order(StringComparer.Ordinal))})").ConfigureAwait(false);
                return ExitCodes.Usage;
            }

            var selected = only.Count == 0 ? checks : checks.Where(c => c.CheckNames.Any(only.Contains)).ToList();
            if (selected.OfType<IUsesCluster>().Any())
            {
                var view = host.Services.GetRequiredService<ClusterView>();
                await view.StartAsync(ct).ConfigureAwait(false);
                await view.WaitSettledAsync(TimeSpan.FromSeconds(15), ct).ConfigureAwait(false);
            }

            foreach (var journal in selected.OfType<JournalRulesService>())
            {
                try
                {
                    await journal.ReadRecentAsync(JournalLookback, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is Common.Journal.JournalException or IOException or UnauthorizedAccessException or DllNotFoundException)
                {
                    await Console.Error.WriteLineAsync($"toolforge-node-agent: cannot read the journal: {ex.Message}").ConfigureAwait(false);
                }
            }

            // How long a process has been in D cannot be told from one look: the stuck-process check watches for --sample
            // (short by default, so `check` answers in seconds) and counts what stayed in D all that time.
            foreach (var stuck in selected.OfType<StuckProcessCheck>())
            {
                stuck.OneShotSample = sample;
                var after = host.Services.GetRequiredService<IOptions<StuckProcessesOptions>>().Value.After;
                if (sample < after)
                {
                    await Console.Error.WriteLineAsync($"toolforge-node-agent: {StuckProcessCheck.Check} watches for {sample.TotalSeconds:0.#} s and counts processes in D all that time; "
                        + $"the daemon waits {after} (NodeAgent:StuckProcesses:After): --sample {after} for that").ConfigureAwait(false);
                }
            }

            // The daemon counts a kube-proxy finding once two audits in a row saw it; one run confirms within itself.
            foreach (var audit in selected.OfType<IptablesAuditCheck>())
            {
                audit.OneShot = true;
            }

            foreach (var audit in selected.OfType<NftablesAuditCheck>())
            {
                audit.OneShot = true;
            }

            // Each check once, with its own timeout, all at once: a hung peer costs its own timeout, not everyone's.
            await Task.WhenAll(selected.Select(c => c.RunGuardedAsync(ct))).ConfigureAwait(false);

            var state = host.Services.GetRequiredService<AgentState>();
            var names = selected.SelectMany(c => c.CheckNames).Where(n => only.Count == 0 || only.Contains(n)).ToHashSet(StringComparer.Ordinal);
            var results = names.Select(state.GetCheck).OfType<CheckResult>().OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
            var findings = state.GetFindings().Where(f => names.Contains(f.Check) || names.Any(n => f.Check.Length > 0 && n.StartsWith(f.Check, StringComparison.Ordinal))).ToList();
            Console.Out.Write(json ? Json(results, findings) : Table(results, findings));
            // A check that does not apply on this host (the kubelet's on a builder) is shown but does not fail the run.
            return results.All(c => c.State == CheckState.Ok || CheckDetails.IsNotApplicable(c)) && results.Count == names.Count ? ExitCodes.Ok : ExitCodes.Failed;
        }
    }

    private static string Table(IReadOnlyList<CheckResult> results, IReadOnlyList<Finding> findings)
    {
        var text = Output.Table(["CHECK", "STATE", "MESSAGE"], results.Select(c => (IReadOnlyList<string>)[c.Name, CheckDetails.IsNotApplicable(c) ? "n/a" : c.State.Name(), c.Message]), width: Output.TerminalWidth(), colourColumn: 1);
        if (findings.Count > 0)
        {
            text += $"\nFindings ({findings.Count}):\n" + Output.Table(["KIND", "SUBJECT", "MESSAGE"], findings.Select(f => (IReadOnlyList<string>)[f.Kind, f.Subject, f.Message]), width: Output.TerminalWidth());
        }

        return text;
    }

    private static string Json(IReadOnlyList<CheckResult> results, IReadOnlyList<Finding> findings)
    {
        var checks = new JsonArray();
        foreach (var c in results)
        {
            var details = new JsonObject();
            foreach (var (k, v) in c.Details.OrderBy(d => d.Key, StringComparer.Ordinal))
            {
                details[k] = v;
            }

            var values = new JsonObject();
            foreach (var (k, v) in c.Values.OrderBy(d => d.Key, StringComparer.Ordinal))
            {
                values[k] = v;
            }

            checks.Add((JsonNode)new JsonObject
            {
                ["name"] = c.Name, ["state"] = CheckDetails.IsNotApplicable(c) ? "n/a" : c.State.Name(), ["message"] = c.Message, ["latency_ms"] = c.Latency is null ? null : Math.Round(c.Latency.ToTimeSpan().TotalMilliseconds, 1),
                ["details"] = details, ["values"] = values,
            });
        }

        var list = new JsonArray();
        foreach (var f in findings)
        {
            list.Add((JsonNode)new JsonObject { ["kind"] = f.Kind, ["subject"] = f.Subject, ["message"] = f.Message, ["check"] = f.Check, ["severity"] = f.Severity.ToString().ToLowerInvariant() });
        }

        return Output.Json(new JsonObject { ["checks"] = checks, ["findings"] = list });
    }
}
