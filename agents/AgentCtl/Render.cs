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

    public static string Message(IMessage message, OutputFormat format) => format switch
    {
        OutputFormat.Json => Output.Json(JsonNode.Parse(Json.Format(message))),
        OutputFormat.Yaml => Output.Yaml(JsonNode.Parse(Json.Format(message))),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    public static string CompactJson(IMessage message) => Json.Format(message) + "\n";

    public static string Nodes(IEnumerable<NodeSummary> nodes, DateTimeOffset now) => Output.Table(
        ["NAME", "STATE", "AGENTS", "LAST REPORT", "SUMMARY"],
        nodes.Select(n => (IReadOnlyList<string>)
        [
            n.Name, n.State.Name(), string.Join(",", n.Agents.Select(a => a.Kind.ShortName())),
            Ago(n.LastReport, now), n.Summary,
        ]),
        colourColumn: 1);

    public static string Node(NodeDetail d, DateTimeOffset now)
    {
        var s = d.Summary;
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Node:        {s.Name}\n");
        text.Append(CultureInfo.InvariantCulture, $"State:       {Output.Colour(s.State.Name(), s.State.Name())}\n");
        text.Append(CultureInfo.InvariantCulture, $"Last report: {Ago(s.LastReport, now)}\n");
        foreach (var a in s.Agents)
        {
            text.Append(CultureInfo.InvariantCulture, $"Agent:       {a.Kind.ShortName()} {Output.Escape(a.Version)}, reported {Ago(a.LastReport, now)}{(a.CommandsConnected ? ", taking commands" : string.Empty)}\n");
        }

        text.Append("\nChecks:\n");
        text.Append(Output.Table(
            ["CHECK", "STATE", "SINCE", "MESSAGE"],
            d.Checks.Select(c => (IReadOnlyList<string>)[c.Name, c.State.Name(), Ago(c.Since, now), c.Message]),
            colourColumn: 1));
        text.Append(CultureInfo.InvariantCulture, $"\nFindings ({d.Findings.Count}):\n");
        if (d.Findings.Count > 0)
        {
            text.Append(Findings(d.Findings, now, withNode: false));
        }

        if (d.Events.Count > 0)
        {
            text.Append("\nRecent events:\n");
            text.Append(Output.Table(
                ["WHEN", "KIND", "MESSAGE"],
                d.Events.Select(e => (IReadOnlyList<string>)[Ago(e.At, now), e.Kind, e.Message])));
        }

        return text.ToString();
    }

    public static string Findings(IEnumerable<Finding> findings, DateTimeOffset now, bool withNode = true) => withNode
        ? Output.Table(
            ["NODE", "KIND", "SUBJECT", "SINCE", "MESSAGE"],
            findings.Select(f => (IReadOnlyList<string>)[f.Node, f.Kind, f.Subject, Ago(f.FirstSeen, now), f.Message]))
        : Output.Table(
            ["KIND", "SUBJECT", "SINCE", "MESSAGE"],
            findings.Select(f => (IReadOnlyList<string>)[f.Kind, f.Subject, Ago(f.FirstSeen, now), f.Message]));

    public static string Builds(IEnumerable<Build> builds, DateTimeOffset now) => Output.Table(
        ["ID", "STATE", "REQUESTED", "BY", "BUILDER", "IMAGES"],
        builds.Select(b => (IReadOnlyList<string>)
        [
            b.Id, b.State.Name(), Ago(b.RequestedAt, now), b.RequestedBy, b.Builder.Length > 0 ? b.Builder : "-",
            $"{string.Join(" ", b.Request?.Images ?? [])} :{b.Request?.Tag}{(b.Request?.Push == true ? " push" : string.Empty)}"
            + (b.Images.Count > 0 ? $" ({b.Images.Count(i => i.Result is "built" or "pushed" or "unchanged")}/{b.Images.Count} ok)" : string.Empty),
        ]),
        colourColumn: 1);

    public static string Build(Build b, DateTimeOffset now)
    {
        var text = new System.Text.StringBuilder(Builds([b], now));
        if (b.Error.Length > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"\nError: {Output.Escape(b.Error)}\n");
        }

        if (b.Images.Count > 0)
        {
            text.Append('\n').Append(Output.Table(
                ["IMAGE", "RESULT", "DURATION", "DIGEST"],
                b.Images.Select(i => (IReadOnlyList<string>)
                    [i.Name.Length > 0 ? i.Name : i.Path, i.Result, i.Duration is null ? "-" : $"{i.Duration.ToTimeSpan().TotalSeconds:0.0}s", i.Digest]),
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
            WatchEvent.EventOneofCase.Node => $"{at} node  {e.Node.Name} {Output.Colour(e.Node.State.Name(), e.Node.State.Name())} {Output.Escape(e.Node.Summary)}\n",
            WatchEvent.EventOneofCase.Build => $"{at} build {e.Build.Id} {Output.Colour(e.Build.State.Name(), e.Build.State.Name())} {string.Join(" ", e.Build.Request?.Images ?? [])}\n",
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
