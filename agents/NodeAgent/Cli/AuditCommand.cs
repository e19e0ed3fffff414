using System.CommandLine;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Files;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Cli;

/// <summary>
/// `toolforge-node-agent audit iptables --services svc.json [--endpointslices eps.json] --iptables-save dump.txt`:
/// the NAT audit offline, on what `kubectl get svc,endpointslices -A -o json` and `iptables-save` print, judged as the
/// daemon judges (its defaults; with --config, its configuration file; a flag given wins).
/// Exit 0 clean, 1 with findings, 2 on bad input, 78 on a configuration the daemon would refuse.
/// </summary>
internal static class AuditCommand
{
    /// <param name="config">The program's --config (recursive): the daemon's configuration file, whose audit settings these take.</param>
    public static Command Create(Option<string?> config)
    {
        var services = new Option<string[]>("--services") { Description = "kubectl get svc[,endpointslices] -A -o json output", Required = true, AllowMultipleArgumentsPerToken = true };
        var slices = new Option<string[]>("--endpointslices") { Description = "kubectl get endpointslices -A -o json output", AllowMultipleArgumentsPerToken = true };
        var dump = new Option<string>("--iptables-save") { Description = "iptables-save output (counters allowed)", Required = true };
        var node = NodeOption();
        var forbid = ForbidOption(IptablesOptions.Section);
        var output = OutputOption();
        var iptables = new Command("iptables", "Audit kube-proxy's NAT rules against the Services, with the daemon's settings (its defaults, or its --config file; flags win)")
        {
            services, slices, dump, node, forbid, output,
        };
        iptables.SetAction(pr =>
        {
            if (DaemonSettings.Read(pr.GetValue(config)) is not { } daemon)
            {
                return ExitCodes.Config;
            }

            ClusterModel cluster;
            IptablesDump rules;
            try
            {
                cluster = ReadCluster(pr.GetValue(services) ?? [], pr.GetValue(slices) ?? []);
                var (bytes, length) = BoundedFile.ReadBytes("--iptables-save", pr.GetValue(dump)!);
                rules = IptablesDump.Parse(bytes, length);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or IptablesParseException)
            {
                Console.Error.WriteLine($"toolforge-node-agent: {ex.Message}");
                return ExitCodes.Usage;
            }

            var findings = NatAudit.Run(cluster, rules, new NatAuditOptions(Forbid(pr, forbid, daemon.Iptables.ForbidNodePorts), pr.GetValue(node) ?? daemon.NodeName));
            Print(findings, pr.GetValue(output) == "json", cluster.Services.Count, rules.Rules.Count, "rules");
            return findings.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        });
        return new Command("audit", "Audits that can run offline") { iptables, Nftables(config) };
    }

    /// <summary>
    /// `audit nftables --services svc.json [--endpointslices eps.json] --nft-json dump.json [--nft-json ip6.json] [--node NAME]`:
    /// the nftables-mode audit on what `kubectl get svc,endpointslices -A -o json` and `nft -j list table ip kube-proxy` print.
    /// </summary>
    private static Command Nftables(Option<string?> config)
    {
        var services = new Option<string[]>("--services") { Description = "kubectl get svc[,endpointslices] -A -o json output", Required = true, AllowMultipleArgumentsPerToken = true };
        var slices = new Option<string[]>("--endpointslices") { Description = "kubectl get endpointslices -A -o json output", AllowMultipleArgumentsPerToken = true };
        var dumps = new Option<string[]>("--nft-json") { Description = "nft -j list table ip kube-proxy (and ip6) output", Required = true, AllowMultipleArgumentsPerToken = true };
        var node = NodeOption();
        var forbid = ForbidOption(NftablesOptions.Section);
        var output = OutputOption();
        var cmd = new Command("nftables", "Audit kube-proxy's nftables table against the Services, with the daemon's settings (its defaults, or its --config file; flags win)")
        {
            services, slices, dumps, node, forbid, output,
        };
        cmd.SetAction(pr =>
        {
            if (DaemonSettings.Read(pr.GetValue(config)) is not { } daemon)
            {
                return ExitCodes.Config;
            }

            ClusterModel cluster;
            NftRuleset rules;
            try
            {
                cluster = ReadCluster(pr.GetValue(services) ?? [], pr.GetValue(slices) ?? []);
                rules = NftRuleset.Parse((pr.GetValue(dumps) ?? []).Select(f => ($"--nft-json {f}", BoundedFile.ReadText("--nft-json", f))).ToList());
                if (rules.Families.Count == 0)
                {
                    throw new InvalidDataException($"--nft-json {string.Join(" ", pr.GetValue(dumps) ?? [])}: no kube-proxy table in it (give what `nft -j list table ip kube-proxy` prints)");
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                Console.Error.WriteLine($"toolforge-node-agent: {ex.Message}");
                return ExitCodes.Usage;
            }

            var findings = NftAudit.Run(cluster, rules, new NftAuditOptions(Forbid(pr, forbid, daemon.Nftables.ForbidNodePorts), pr.GetValue(node) ?? daemon.NodeName));
            Print(findings, pr.GetValue(output) == "json", cluster.Services.Count, rules.RuleCount + rules.ElementCount, "rules and elements");
            return findings.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        });
        return cmd;
    }

    private static Option<string?> NodeOption() =>
        new("--node") { Description = "This node's name, for the Local traffic policies (default: NodeAgent:NodeName of --config)" };

    private static Option<bool> ForbidOption(string section) => new("--forbid-nodeports")
    {
        Description = $"Report every NodePort, true or false (default: {section}:ForbidNodePorts of --config, else true as the daemon: Toolforge's quota keeps NodePorts at 0)",
    };

    private static Option<string> OutputOption()
    {
        var output = new Option<string>("--output", "-o") { Description = "table or json", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json");
        return output;
    }

    /// <summary>--forbid-nodeports when given (bare: true), else the daemon's setting.</summary>
    private static bool Forbid(ParseResult pr, Option<bool> flag, bool daemon) => pr.GetResult(flag) is { Implicit: false } ? pr.GetValue(flag) : daemon;

    /// <summary>
    /// What the audits take from the daemon: its defaults, or (with --config) its configuration file read and checked
    /// as the daemon reads it (exit 78 with one line when the daemon would refuse it).
    /// </summary>
    private sealed record DaemonSettings(IptablesOptions Iptables, NftablesOptions Nftables, string? NodeName)
    {
        public static DaemonSettings? Read(string? configPath)
        {
            if (configPath is null)
            {
                return new DaemonSettings(new IptablesOptions(), new NftablesOptions(), null);
            }

            try
            {
                using var host = NodeAgentHost.BuildOneShot(configPath);
                var name = host.Services.GetRequiredService<IOptions<NodeOptions>>().Value.NodeName;
                return new DaemonSettings(host.Services.GetRequiredService<IOptions<IptablesOptions>>().Value,
                    host.Services.GetRequiredService<IOptions<NftablesOptions>>().Value, name.Length > 0 ? name : null);
            }
            catch (Exception ex) when (AgentHost.Describe(ex) is { } line)
            {
                Console.Error.WriteLine($"toolforge-node-agent: invalid configuration: {line}");
                return null;
            }
        }
    }

    private static void Print(IReadOnlyList<Contracts.V1.Finding> findings, bool json, int services, int rules, string what)
    {
        if (json)
        {
            var arr = new JsonArray();
            foreach (var f in findings)
            {
                var details = new JsonObject();
                foreach (var (k, v) in f.Details.OrderBy(d => d.Key, StringComparer.Ordinal))
                {
                    details[k] = v;
                }

                arr.Add((JsonNode)new JsonObject { ["kind"] = f.Kind, ["subject"] = f.Subject, ["message"] = f.Message, ["severity"] = f.Severity.ToString().ToLowerInvariant(), ["details"] = details });
            }

            Console.Out.Write(Output.Json(new JsonObject { ["services"] = services, ["rules"] = rules, ["findings"] = arr }));
        }
        else if (findings.Count == 0)
        {
            Console.Out.WriteLine($"clean: {services} services, {rules} {what}");
        }
        else
        {
            Console.Out.Write(Output.Table(["KIND", "SUBJECT", "MESSAGE"], findings.Select(f => (IReadOnlyList<string>)[f.Kind, f.Subject, f.Message]), width: Output.TerminalWidth()));
        }
    }

    /// <summary>
    /// The Services (and EndpointSlices) the offline audit compares with. A file that holds no Service at all (what
    /// `kubectl get pods -o json` prints, say) is an error: audited against nothing, every rule would be "stale".
    /// </summary>
    public static ClusterModel ReadCluster(IReadOnlyList<string> serviceFiles, IReadOnlyList<string> sliceFiles)
    {
        var snapshot = KubectlSnapshot.Read(serviceFiles.Select(f => (f, BoundedFile.ReadText("--services", f)))
            .Concat(sliceFiles.Select(f => (f, BoundedFile.ReadText("--endpointslices", f)))));
        if (snapshot.Services.Count == 0)
        {
            var held = snapshot.Ignored.Count > 0 ? $"it lists {string.Join(", ", snapshot.Ignored.Select(k => $"{k.Value} {k.Key}"))}" : "it lists nothing";
            throw new InvalidDataException(
                $"--services {string.Join(" ", serviceFiles)}: no Service in it ({held}); give what `kubectl get svc,endpointslices -A -o json` prints");
        }

        // Every Service with a selector has an EndpointSlice (an empty one while it has no endpoints), and
        // default/kubernetes always has one: none at all means they were not given, and audited without them every
        // Service would look endpoint-less (a finding for each of its rules).
        var needing = snapshot.Services.Count(s => s.Spec?.Type != "ExternalName" && s.Spec?.ClusterIP is not (null or "" or "None"));
        if (needing > 0 && snapshot.EndpointSlices.Count == 0)
        {
            var endpoints = snapshot.Ignored.GetValueOrDefault("Endpoints") is > 0 and var n ? $"; it lists {n} Endpoints, kube-proxy reads EndpointSlices" : string.Empty;
            throw new InvalidDataException(
                $"--services {string.Join(" ", serviceFiles.Concat(sliceFiles))}: {needing} Service(s) but no EndpointSlice{endpoints}; give what `kubectl get svc,endpointslices -A -o json` prints (or --endpointslices FILE)");
        }

        return snapshot.Model();
    }
}
