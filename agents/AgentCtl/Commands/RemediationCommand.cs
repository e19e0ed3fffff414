using System.CommandLine;
using System.Globalization;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>
/// agentctl remediation status (viewers and admins): the pools, their settings, who holds their leases, and what
/// stops new ones (a tripped storm breaker, a pause, holds on nodes); pause, resume, cancel and reset-breaker (admins).
/// </summary>
internal static class RemediationCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var status = new Command("status", "Each remediation pool: its places, gap, lease life and windows, and the nodes holding its lease (step, token, since, until)") { output };
        status.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var response = await c.Admin.ListRemediationAsync(new ListRemediationRequest(), deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.PrintListing(format, response.Pools.Count, "remediation pools",
                () => Table(response, DateTimeOffset.UtcNow, format), () => Render.Message(response, format),
                why: "the coordinator's Coordinator:Remediation:Pools is empty, so no node is remediated without an admin");
        }));
        return new Command("remediation", "The coordinator's pacing of node remediation (cordon, drain, reboot, uncordon)")
        {
            status,
            Control(g, "pause", RemediationAction.Pause, "POOL|NODE", "Take no new lease for a pool or a node (leases under way go on; admins only, audited)", reasonRequired: true),
            Control(g, "resume", RemediationAction.Resume, "POOL|NODE", "Lift a pause (admins only, audited)", reasonRequired: false),
            Control(g, "cancel", RemediationAction.Cancel, "NODE", "End a node's incident now: its lease goes, its agent stops at its next step and does not start it again (admins only, audited)", reasonRequired: true),
            Control(g, "reset-breaker", RemediationAction.ResetBreaker, "POOL", "Let a pool whose storm breaker tripped take leases again (admins only, audited)", reasonRequired: false),
        };
    }

    private static Command Control(AgentCtlOptions g, string name, RemediationAction action, string what, string description, bool reasonRequired)
    {
        var output = AgentCtlOptions.Output();
        var target = new Argument<string>(what.Contains('|', StringComparison.Ordinal) ? "target" : what.ToLowerInvariant()) { Description = what switch
        {
            "POOL|NODE" => "A pool's name (Coordinator:Remediation:Pools) or a node's",
            "NODE" => "The node whose incident ends",
            _ => "The pool's name",
        } };
        var reason = new Option<string?>("--reason") { Description = reasonRequired ? "Why (required; for the audit log and the status)" : "Why, for the audit log", Required = reasonRequired };
        var cmd = new Command(name, description) { target, reason, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var pool = await c.Admin.ControlRemediationAsync(new ControlRemediationRequest { Action = action, Target = pr.GetValue(target)!, Reason = pr.GetValue(reason) ?? string.Empty },
                deadline: c.Deadline(), cancellationToken: ct);
            var format = Output.Parse(pr.GetValue(output));
            if (format is OutputFormat.Json or OutputFormat.Yaml)
            {
                AgentCtlOptions.Print(Render.Message(pool, format));
                return;
            }

            var response = new ListRemediationResponse();
            response.Pools.Add(pool);
            AgentCtlOptions.Print($"{name} {Output.Escape(pr.GetValue(target)!)}: done\n" + Table(response, DateTimeOffset.UtcNow, format));
        }));
        return cmd;
    }

    internal static string Table(ListRemediationResponse r, DateTimeOffset now, OutputFormat format)
    {
        var wide = format == OutputFormat.Wide;
        IReadOnlyList<string> headers = wide
            ? ["POOL", "HELD", "GAP", "LEASE", "WINDOWS", "LAST CHANGE", "NODES", "HOLDERS", "STATE"]
            : ["POOL", "HELD", "GAP", "LEASE", "WINDOWS", "HOLDERS", "STATE"];
        var rows = r.Pools.Select(p =>
        {
            var held = $"{p.Leases.Count.ToString(CultureInfo.InvariantCulture)}/{p.MaxConcurrent.ToString(CultureInfo.InvariantCulture)}";
            var windows = p.Windows.Count == 0 ? "always" : string.Join("; ", p.Windows);
            var stops = new List<string>();
            if (p.BreakerAt is not null)
            {
                stops.Add($"BREAKER TRIPPED {Render.Ago(p.BreakerAt, now)} ({p.BreakerReason})");
            }

            if (p.PausedBy.Length > 0)
            {
                stops.Add($"paused by {p.PausedBy} {Render.Ago(p.PausedAt, now)}: {p.PausedReason}");
            }

            stops.AddRange(p.Holds.Select(h => h.Kind switch
            {
                "cancelled" => $"{h.Node} incident {h.Incident} cancelled by {h.By} {Render.Ago(h.At, now)}: {h.Reason}",
                "held" => $"{h.Node} {h.Reason} (its node-agent, {Render.Ago(h.At, now)})",
                _ => $"{h.Node} paused by {h.By} {Render.Ago(h.At, now)}: {h.Reason}",
            }));
            var state = stops.Count == 0 ? $"open ({p.Candidates.ToString(CultureInfo.InvariantCulture)} asked lately of {p.KnownNodes.ToString(CultureInfo.InvariantCulture)} known)" : string.Join("; ", stops);
            var holders = p.Leases.Count == 0
                ? "-"
                : string.Join(", ", p.Leases.Select(l => $"{l.Node} ({l.Step}, token {l.Token.ToString(CultureInfo.InvariantCulture)}, since {Render.Ago(l.AcquiredAt, now)}, lapses in {Durations.Format(l.ExpiresAt.ToDateTimeOffset() - now)})"));
            IReadOnlyList<string> row = wide
                ? [p.Name, held, Durations.Format(p.MinGap.ToTimeSpan()), Durations.Format(p.LeaseTtl.ToTimeSpan()), windows, p.LastChangeAt is null ? "never" : Render.Ago(p.LastChangeAt, now), string.Join(",", p.Nodes), holders, state]
                : [p.Name, held, Durations.Format(p.MinGap.ToTimeSpan()), Durations.Format(p.LeaseTtl.ToTimeSpan()), windows, holders, state];
            return row;
        });
        return Output.Table(headers, rows, width: Render.Width(format));
    }
}
