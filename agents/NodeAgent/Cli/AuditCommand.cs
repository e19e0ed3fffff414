using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Kubernetes;

namespace Toolforge.Agents.NodeAgent.Cli;

/// <summary>
/// `toolforge-node-agent audit iptables --services svc.json [--endpointslices eps.json] --iptables-save dump.txt`:
/// the NAT audit offline, on what `kubectl get svc,endpointslices -A -o json` and `iptables-save` print.
/// Exit 0 clean, 1 with findings, 2 on bad input.
/// </summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var services = new Option<string[]>("--services") { Description = "kubectl get svc[,endpointslices] -A -o json output", Required = true, AllowMultipleArgumentsPerToken = true };
        var slices = new Option<string[]>("--endpointslices") { Description = "kubectl get endpointslices -A -o json output", AllowMultipleArgumentsPerToken = true };
        var dump = new Option<string>("--iptables-save") { Description = "iptables-save output (counters allowed)", Required = true };
        var node = new Option<string?>("--node") { Description = "This node's name (for internalTrafficPolicy: Local)" };
        var forbid = new Option<bool>("--forbid-nodeports") { Description = "Report every NodePort (Toolforge's quota keeps them at 0)" };
        var output = new Option<string>("--output", "-o") { Description = "table or json", DefaultValueFactory = _ => "table" };
        output.AcceptOnlyFromAmong("table", "json");
        var iptables = new Command("iptables", "Audit kube-proxy's NAT rules against the Services") { services, slices, dump, node, forbid, output };
        iptables.SetAction(pr =>
        {
            ClusterModel cluster;
            IptablesDump rules;
            try
            {
                cluster = ReadCluster(pr.GetValue(services) ?? [], pr.GetValue(slices) ?? []);
                rules = IptablesDump.Parse(File.ReadAllText(pr.GetValue(dump)!));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or IptablesParseException)
            {
                Console.Error.WriteLine($"toolforge-node-agent: {ex.Message}");
                return ExitCodes.Usage;
            }

            var findings = NatAudit.Run(cluster, rules, new NatAuditOptions(pr.GetValue(forbid), pr.GetValue(node)));
            if (pr.GetValue(output) == "json")
            {
                var arr = new JsonArray();
                foreach (var f in findings)
                {
                    var details = new JsonObject();
                    foreach (var (k, v) in f.Details.OrderBy(d => d.Key, StringComparer.Ordinal))
                    {
                        details[k] = v;
                    }

                    arr.Add(new JsonObject { ["kind"] = f.Kind, ["subject"] = f.Subject, ["message"] = f.Message, ["severity"] = f.Severity.ToString().ToLowerInvariant(), ["details"] = details });
                }

                Console.Out.Write(Output.Json(new JsonObject
                {
                    ["services"] = cluster.Services.Count,
                    ["rules"] = rules.Rules.Count,
                    ["findings"] = arr,
                }));
            }
            else if (findings.Count == 0)
            {
                Console.Out.WriteLine($"clean: {cluster.Services.Count} services, {rules.Rules.Count} rules");
            }
            else
            {
                Console.Out.Write(Output.Table(["KIND", "SUBJECT", "MESSAGE"], findings.Select(f => (IReadOnlyList<string>)[f.Kind, f.Subject, f.Message]), width: 200));
            }

            return findings.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        });
        return new Command("audit", "Audits that can run offline") { iptables };
    }

    /// <summary>
    /// The Services (and EndpointSlices) the offline audit compares with. A file that holds no Service at all (what
    /// `kubectl get pods -o json` prints, say) is an error: audited against nothing, every rule would be "stale".
    /// </summary>
    public static ClusterModel ReadCluster(IReadOnlyList<string> serviceFiles, IReadOnlyList<string> sliceFiles)
    {
        var snapshot = KubectlSnapshot.Read(serviceFiles.Concat(sliceFiles).Select(f => (f, File.ReadAllText(f))));
        if (snapshot.Services.Count == 0)
        {
            var held = snapshot.Ignored.Count > 0 ? $"it lists {string.Join(", ", snapshot.Ignored.Select(k => $"{k.Value} {k.Key}"))}" : "it lists nothing";
            throw new InvalidDataException(
                $"--services {string.Join(" ", serviceFiles)}: no Service in it ({held}); give what `kubectl get svc,endpointslices -A -o json` prints");
        }

        return snapshot.Model();
    }
}
