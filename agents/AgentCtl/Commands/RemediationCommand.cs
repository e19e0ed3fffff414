using System.CommandLine;
using System.Globalization;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl remediation status: the pools, their settings and who holds their leases (viewers and admins).</summary>
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
            AgentCtlOptions.PrintListing(format, response.Pools.Count, "remediation pools (Coordinator:Remediation:Pools is empty)",
                () => Table(response, DateTimeOffset.UtcNow, format), () => Render.Message(response, format));
        }));
        return new Command("remediation", "The coordinator's pacing of node remediation (cordon, drain, reboot, uncordon)") { status };
    }

    internal static string Table(ListRemediationResponse r, DateTimeOffset now, OutputFormat format)
    {
        var wide = format == OutputFormat.Wide;
        IReadOnlyList<string> headers = wide
            ? ["POOL", "HELD", "GAP", "LEASE", "WINDOWS", "LAST CHANGE", "NODES", "HOLDERS"]
            : ["POOL", "HELD", "GAP", "LEASE", "WINDOWS", "HOLDERS"];
        var rows = r.Pools.Select(p =>
        {
            var held = $"{p.Leases.Count.ToString(CultureInfo.InvariantCulture)}/{p.MaxConcurrent.ToString(CultureInfo.InvariantCulture)}";
            var windows = p.Windows.Count == 0 ? "always" : string.Join("; ", p.Windows);
            var holders = p.Leases.Count == 0
                ? "-"
                : string.Join(", ", p.Leases.Select(l => $"{l.Node} ({l.Step}, token {l.Token.ToString(CultureInfo.InvariantCulture)}, since {Render.Ago(l.AcquiredAt, now)}, lapses in {Durations.Format(l.ExpiresAt.ToDateTimeOffset() - now)})"));
            IReadOnlyList<string> row = wide
                ? [p.Name, held, Durations.Format(p.MinGap.ToTimeSpan()), Durations.Format(p.LeaseTtl.ToTimeSpan()), windows, p.LastChangeAt is null ? "never" : Render.Ago(p.LastChangeAt, now), string.Join(",", p.Nodes), holders]
                : [p.Name, held, Durations.Format(p.MinGap.ToTimeSpan()), Durations.Format(p.LeaseTtl.ToTimeSpan()), windows, holders];
            return row;
        });
        return Output.Table(headers, rows, width: Render.Width(format));
    }
}
