using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl builds</summary>
internal static class BuildsCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var limit = new Option<int>("--limit") { Description = "At most this many, newest first", DefaultValueFactory = _ => 50 };
        limit.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
            {
                r.AddError("--limit: must be at least 1");
            }
        });
        var state = AgentCtlOptions.Words("--state", "Only builds in these states: queued, running, succeeded, failed");
        var id = new Argument<string?>("id") { Description = "One build: its images, their results, digests and the commit each was built from", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("builds", "List image builds requested through the coordinator; with an ID, that build's images") { id, limit, state, output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            if (pr.GetValue(id) is { } one)
            {
                var build = await c.Admin.GetBuildAsync(new GetBuildRequest { Id = one }, deadline: c.Deadline(), cancellationToken: ct);
                var shown = Output.Parse(pr.GetValue(output));
                AgentCtlOptions.Print(shown is Common.Cli.OutputFormat.Json or Common.Cli.OutputFormat.Yaml ? Render.Message(build, shown) : Render.Build(build, DateTimeOffset.UtcNow));
                return;
            }

            var states = AgentCtlOptions.Parse(pr, state, ParseBuildState, "queued, running, succeeded, failed");
            var response = await c.Admin.ListBuildsAsync(new ListBuildsRequest { Limit = pr.GetValue(limit) }, deadline: c.Deadline(), cancellationToken: ct);
            var builds = response.Builds.Where(b => states.Count == 0 || states.Contains(b.State)).ToList();
            var filtered = new ListBuildsResponse();
            filtered.Builds.AddRange(builds);
            var format = Output.Parse(pr.GetValue(output));
            AgentCtlOptions.PrintListing(format, builds.Count, "builds", () => Render.Builds(builds, DateTimeOffset.UtcNow, format), () => Render.Message(filtered, format));
        }));
        return cmd;
    }

    private static BuildState? ParseBuildState(string word) =>
        Enum.GetValues<BuildState>().Where(s => s != BuildState.Unspecified).Cast<BuildState?>()
            .FirstOrDefault(s => string.Equals(s!.Value.Name(), word, StringComparison.OrdinalIgnoreCase));
}
