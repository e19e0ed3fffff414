using System.CommandLine;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl findings</summary>
internal static class FindingsCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var node = new Option<string?>("--node") { Description = "Only this node" };
        node.CompletionSources.Add(ctx => g.NodeNames(ctx.ParseResult).Select(n => new System.CommandLine.Completions.CompletionItem(n)));
        var kind = AgentCtlOptions.Words("--kind", "Only these kinds: missing-rule, stale-rule, foreign-image, ...");
        var severity = AgentCtlOptions.Words("--severity", "Only these severities: info, warning, error");
        var check = AgentCtlOptions.Words("--check", "Only findings of these checks, e.g. kube-proxy.iptables");
        var limit = new Option<int>("--limit") { Description = "At most this many", DefaultValueFactory = _ => 1000 };
        limit.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
            {
                r.AddError("--limit: must be at least 1");
            }
        });
        var sortBy = AgentCtlOptions.SortBy("node", "kind", "subject", "severity", "since");
        var all = new Option<bool>("--all", "-A") { Description = "Also the findings an admin acknowledged (agentctl ack), with who, why and until when" };
        var cmd = new Command("findings", "List what the audits found (not those acknowledged: --all shows them)") { node, kind, severity, check, limit, sortBy, all, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var kinds = AgentCtlOptions.Set(pr, kind);
            var severities = AgentCtlOptions.Parse(pr, severity, ContractNames.ParseSeverity, "info, warning, error");
            var checks = AgentCtlOptions.Set(pr, check);
            var response = await c.Admin.ListFindingsAsync(new ListFindingsRequest
            {
                Node = pr.GetValue(node) ?? string.Empty,
                Kind = kinds.Count == 1 ? kinds.Single() : string.Empty, // one kind is filtered by the coordinator, several here
                Limit = pr.GetValue(limit),
                IncludeAcknowledged = pr.GetValue(all),
            }, deadline: c.Deadline(), cancellationToken: ct);
            var findings = response.Findings
                .Where(f => kinds.Count == 0 || kinds.Contains(f.Kind))
                .Where(f => severities.Count == 0 || severities.Contains(f.Severity))
                .Where(f => checks.Count == 0 || checks.Contains(f.Check))
                .ToList();
            findings = pr.GetValue(sortBy) switch
            {
                "node" => [.. findings.OrderBy(f => f.Node, StringComparer.Ordinal).ThenBy(f => f.Kind, StringComparer.Ordinal)],
                "kind" => [.. findings.OrderBy(f => f.Kind, StringComparer.Ordinal).ThenBy(f => f.Node, StringComparer.Ordinal)],
                "subject" => [.. findings.OrderBy(f => f.Subject, StringComparer.Ordinal)],
                "severity" => [.. findings.OrderByDescending(f => f.Severity).ThenBy(f => f.Node, StringComparer.Ordinal)],
                "since" => [.. findings.OrderBy(f => f.FirstSeen?.ToDateTimeOffset() ?? DateTimeOffset.MaxValue)],
                _ => findings,
            };
            var filtered = new ListFindingsResponse();
            filtered.Findings.AddRange(findings);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.PrintListing(format, findings.Count, "findings", () => Render.Findings(findings, DateTimeOffset.UtcNow, format, acknowledgements: pr.GetValue(all)), () => Render.Message(filtered, format));
        }));
        return cmd;
    }
}
