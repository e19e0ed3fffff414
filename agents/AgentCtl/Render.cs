using System.Globalization;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;

namespace Toolforge.Agents.AgentCtl;

/// <summary>How agentctl prints things: tables for people, protobuf's JSON mapping (or its YAML) for scripts.</summary>
internal static class Render
{
    private static readonly JsonFormatter Json = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(false));

    /// <summary>JSON or YAML of a response, its enum values in the tables' words (README: agentctl output).</summary>
    public static string Message(IMessage message, OutputFormat format) => format switch
    {
        OutputFormat.Json => Output.Json(ContractNames.InTableWords(JsonNode.Parse(Json.Format(message)))),
        OutputFormat.Yaml => Output.Yaml(ContractNames.InTableWords(JsonNode.Parse(Json.Format(message)))),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    public static string CompactJson(IMessage message) => ContractNames.InTableWords(JsonNode.Parse(Json.Format(message)))!.ToJsonString() + "\n";

    /// <summary>The width a table may take: the terminal's for -o table, none for -o wide (and for a pipe).</summary>
    public static int? Width(OutputFormat format) => format == OutputFormat.Wide ? null : Output.TerminalWidth();

    public static string Nodes(IEnumerable<NodeSummary> nodes, DateTimeOffset now, OutputFormat format = OutputFormat.Table) => format == OutputFormat.Wide
        ? Output.Table(
            ["NAME", "STATE", "AGENTS", "LAST REPORT", "FAILING", "WARNING", "FINDINGS", "SUMMARY"],
            nodes.Select(n => (IReadOnlyList<string>)
            [
                n.Name, n.State.Name(), string.Join(",", n.Agents.Select(a => a.Kind.Name())), Ago(n.LastReport, now),
                n.FailingChecks.ToString(CultureInfo.InvariantCulture), n.WarningChecks.ToString(CultureInfo.InvariantCulture),
                n.Findings.ToString(CultureInfo.InvariantCulture), n.Summary,
            ]),
            width: null, colourColumn: 1)
        : Output.Table(
            ["NAME", "STATE", "AGENTS", "LAST REPORT", "SUMMARY"],
            nodes.Select(n => (IReadOnlyList<string>)
            [
                n.Name, n.State.Name(), string.Join(",", n.Agents.Select(a => a.Kind.ShortName())),
                Ago(n.LastReport, now), n.Summary,
            ]),
            width: Width(format), colourColumn: 1);

    public static string Node(NodeDetail d, DateTimeOffset now, OutputFormat format = OutputFormat.Table)
    {
        var width = Width(format);
        var s = d.Summary;
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Node:        {Output.Escape(s.Name)}\n");
        text.Append(CultureInfo.InvariantCulture, $"State:       {Output.Colour(s.State.Name(), s.State.Name())}\n");
        text.Append(CultureInfo.InvariantCulture, $"Last report: {Ago(s.LastReport, now)}\n");
        foreach (var a in s.Agents)
        {
            text.Append(CultureInfo.InvariantCulture, $"Agent:       {a.Kind.ShortName()} {Output.Escape(a.Version)}, reported {Ago(a.LastReport, now)}{(a.CommandsConnected ? ", taking commands" : string.Empty)}\n");
        }

        text.Append("\nChecks:\n");
        text.Append(Output.Table(
            ["CHECK", "STATE", "SINCE", "MESSAGE"],
            d.Checks.Select(c => (IReadOnlyList<string>)[c.Name, Common.Checks.CheckDetails.IsNotApplicable(c) ? "n/a" : c.State.Name(), Ago(c.Since, now), c.Message]),
            width: width, colourColumn: 1));
        text.Append(CultureInfo.InvariantCulture, $"\nFindings ({d.Findings.Count}):\n");
        if (d.Findings.Count > 0)
        {
            text.Append(Findings(d.Findings, now, format, withNode: false, acknowledgements: d.Findings.Any(f => f.Acknowledged is not null)));
        }

        if (d.Events.Count > 0)
        {
            text.Append("\nRecent events:\n");
            text.Append(Output.Table(
                ["WHEN", "KIND", "MESSAGE"],
                d.Events.Select(e => (IReadOnlyList<string>)[Ago(e.At, now), e.Kind, e.Message]), width: width));
        }

        return text.ToString();
    }

    /// <param name="acknowledgements">An ACK column: who acknowledged a finding, until when and why ("-" for none).</param>
    public static string Findings(IEnumerable<Finding> findings, DateTimeOffset now, OutputFormat format = OutputFormat.Table, bool withNode = true, bool acknowledgements = false)
    {
        var wide = format == OutputFormat.Wide;
        IReadOnlyList<string> headers =
        [
            .. withNode ? ["NODE"] : Array.Empty<string>(), "ID", "KIND", "SUBJECT", .. wide ? ["SEVERITY", "CHECK", "AGENT", "SINCE"] : Array.Empty<string>(),
            .. acknowledgements ? ["ACK"] : Array.Empty<string>(), "MESSAGE",
        ];
        return Output.Table(headers, findings.Select(f => (IReadOnlyList<string>)
        [
            .. withNode ? [f.Node] : Array.Empty<string>(), f.Id, f.Kind, f.Subject,
            .. wide ? [f.Severity.Name(), f.Check, f.Agent.Name(), Ago(f.FirstSeen, now)] : Array.Empty<string>(),
            .. acknowledgements ? [Acknowledged(f.Acknowledged, now)] : Array.Empty<string>(), f.Message,
        ]), width: Width(format));
    }

    /// <summary>"by admin.example for 1h59m: reason", or "-".</summary>
    public static string Acknowledged(Acknowledgement? a, DateTimeOffset now) => a is null
        ? "-"
        : $"by {a.By} for {Durations.Format(a.Until.ToDateTimeOffset() - now)}: {a.Reason}";

    /// <summary>What agentctl says when a build record was queued: a line naming how to follow it, or the record itself (-o json/yaml).</summary>
    public static string Queued(string what, Build build, OutputFormat format) => format is OutputFormat.Table or OutputFormat.Wide
        ? $"{what} {build.Id} queued{(build.Builder.Length > 0 ? $" on {Output.Escape(build.Builder)}" : " until a builder connects")}; follow it with: agentctl build-log {build.Id} -f\n"
        : Message(build, format);

    // What a build record asked for, in a few words: a build, a promotion, a prune or a security rebuild (with its reason).
    private static string What(BuildRequest? r)
    {
        var images = r is null || r.Images.Count == 0 ? "(all)" : string.Join(" ", r.Images);
        var what = r switch
        {
            null => string.Empty,
            { Prune: { } p } => $"prune {images} keep {p.Keep}{(p.DryRun ? " dry-run" : string.Empty)}",
            { Promote: true } => $"promote {(r.AllVerified ? "(all verified)" : images)}",
            { SecurityRebuild: true } => $"security {images}",
            _ => $"{images} :{r.Tag}{(r.Push ? " push" : string.Empty)}",
        };
        return Output.Escape(what + (r is { Reason.Length: > 0 } ? $" ({r.Reason})" : string.Empty));
    }

    public static string Builds(IEnumerable<Build> builds, DateTimeOffset now, OutputFormat format = OutputFormat.Table) => Output.Table(
        ["ID", "STATE", "REQUESTED", "BY", "BUILDER", "IMAGES"],
        builds.Select(b => (IReadOnlyList<string>)
        [
            b.Id, b.State.Name(), Ago(b.RequestedAt, now), b.RequestedBy, b.Builder.Length > 0 ? b.Builder : "-",
            What(b.Request) + (b.Images.Count > 0 ? $" ({b.Images.Count(i => ImageResults.IsOk(i.Result))}/{b.Images.Count} ok)" : string.Empty),
        ]),
        width: Width(format), colourColumn: 1);

    /// <summary>
    /// agentctl images --package: one row per (digest, architecture); NODES: how many nodes hold the digest and how many
    /// of them have a container from it ("unknown" until node-agents list their images); -o wide adds the repository and
    /// the nodes by name (in-use ones marked *).
    /// </summary>
    public static string ImagePackages(ListImagePackagesResponse r, DateTimeOffset now, OutputFormat format = OutputFormat.Table) => format == OutputFormat.Wide
        ? Output.Table(
            ["IMAGE", "DIGEST", "PACKAGE", "VERSION", "ARCH", "RECORDED", "REPOSITORY", "NODES"],
            r.Matches.Select(m => (IReadOnlyList<string>)
                [m.Path.Length > 0 ? m.Path : m.Repository, m.Digest, m.Package, m.Version, m.Architecture.Length > 0 ? m.Architecture : "-", Ago(m.RecordedAt, now), m.Repository,
                 !r.NodesKnown ? "unknown" : m.Nodes.Count == 0 ? "none" : string.Join(",", m.Nodes.Select(n => m.NodesInUse.Contains(n) ? n + "*" : n))]),
            width: null)
        : Output.Table(
            ["IMAGE", "DIGEST", "PACKAGE", "VERSION", "ARCH", "RECORDED", "NODES"],
            r.Matches.Select(m => (IReadOnlyList<string>)
                [m.Path.Length > 0 ? m.Path : m.Repository, m.Digest, m.Package, m.Version, m.Architecture.Length > 0 ? m.Architecture : "-", Ago(m.RecordedAt, now),
                 !r.NodesKnown ? "unknown" : $"{m.Nodes.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)} ({m.NodesInUse.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)} in use)"]),
            width: Width(format));

    public static string Build(Build b, DateTimeOffset now)
    {
        var text = new System.Text.StringBuilder(Builds([b], now));
        if (b.Error.Length > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"\nError: {Output.Escape(b.Error)}\n");
        }

        if (b.Images.Count > 0)
        {
            // COMMIT: the image repository's commit an image was built from, when the builder's checkout was a clean one.
            var commits = b.Images.Any(i => i.Revision.Length > 0);
            text.Append('\n').Append(Output.Table(
                commits ? ["IMAGE", "RESULT", "DURATION", "DIGEST", "COMMIT"] : ["IMAGE", "RESULT", "DURATION", "DIGEST"],
                b.Images.Select(i => (IReadOnlyList<string>)
                    [i.Name.Length > 0 ? i.Name : i.Path, i.Result, i.Duration is null ? "-" : $"{i.Duration.ToTimeSpan().TotalSeconds:0.0}s", i.Digest,
                     .. commits ? [i.Revision.Length > 12 ? i.Revision[..12] : i.Revision] : Array.Empty<string>()]),
                colourColumn: 1));
        }

        return text.ToString();
    }

    public static string WatchLine(WatchEvent e, DateTimeOffset now)
    {
        var at = e.At?.ToDateTimeOffset().ToString("HH:mm:ss", CultureInfo.InvariantCulture) ?? "--:--:--";
        return e.EventCase switch
        {
            WatchEvent.EventOneofCase.Snapshot => $"{at} snapshot: {e.Snapshot.Nodes.Count} nodes, {e.Snapshot.Builds.Count} recent builds\n" + Nodes(e.Snapshot.Nodes, now),
            WatchEvent.EventOneofCase.Node => $"{at} node  {Output.Escape(e.Node.Name)} {Output.Colour(e.Node.State.Name(), e.Node.State.Name())} {Output.Escape(e.Node.Summary)}\n",
            WatchEvent.EventOneofCase.Build => $"{at} build {e.Build.Id} {Output.Colour(e.Build.State.Name(), e.Build.State.Name())} {string.Join(" ", e.Build.Request?.Images ?? [])}\n",
            WatchEvent.EventOneofCase.NodeRemoved => $"{at} node  {Output.Escape(e.NodeRemoved)} forgotten\n",
            _ => $"{at} (unknown event)\n",
        };
    }

    public static string Ago(Timestamp? t, DateTimeOffset now)
    {
        if (t is null)
        {
            return "never";
        }

        var d = now - t.ToDateTimeOffset();
        if (d < TimeSpan.Zero)
        {
            d = TimeSpan.Zero;
        }

        return d.TotalSeconds < 60 ? $"{(int)d.TotalSeconds}s ago"
            : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes}m ago"
            : d.TotalHours < 48 ? $"{(int)d.TotalHours}h ago"
            : $"{(int)d.TotalDays}d ago";
    }
}
