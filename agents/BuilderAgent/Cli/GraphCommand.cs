using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.Common.Cli;

namespace Toolforge.Agents.BuilderAgent.Cli;

/// <summary>`graph`: every image and its parent, as a tree, dot or JSON.</summary>
internal static class GraphCommand
{
    public static Command Create(BuilderCli.Flags f)
    {
        var graphFormat = new Option<string>("--output", "-o") { Description = "tree, dot or json", DefaultValueFactory = _ => "tree" };
        graphFormat.AcceptOnlyFromAmong("tree", "dot", "json");
        var graphCmd = new Command("graph", "Print every image and its parent") { f.Repo, f.Registry, f.Prefix, f.Tag, graphFormat };
        graphCmd.SetAction(pr => BuilderCli.GuardSync(() =>
        {
            var session = BuilderCli.Session(pr, f);
            Console.Out.Write(GraphCommand.Text(session.Graph, session.Naming, pr.GetValue(graphFormat)!));
            return 0;
        }));
        return graphCmd;
    }

    internal static string Text(ImageGraph graph, NamingOptions naming, string format)
    {
        var sb = new StringBuilder();
        switch (format)
        {
            case "dot":
                sb.Append("digraph images {\n  rankdir=LR;\n");
                foreach (var i in graph.Images)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"  \"{i.ParentPath ?? i.From}\" -> \"{i.Path}\";\n");
                }

                sb.Append("}\n");
                return sb.ToString();
            case "json":
                var arr = new JsonArray();
                foreach (var i in graph.Images)
                {
                    arr.Add((JsonNode)new JsonObject { ["image"] = i.Path, ["name"] = naming.FullName(i.Path), ["parent"] = i.ParentPath, ["from"] = i.From });
                }

                return Output.Json(new JsonObject { ["images"] = arr });
            default:
                foreach (var r in graph.Roots.Order(StringComparer.Ordinal))
                {
                    sb.Append(CultureInfo.InvariantCulture, $"{r}  (FROM {graph[r].From})\n");
                    foreach (var d in graph.Descendants(r))
                    {
                        sb.Append(new string(' ', 2 * graph.Depth(d))).Append(d).Append('\n');
                    }
                }

                return sb.ToString();
        }
    }
}
