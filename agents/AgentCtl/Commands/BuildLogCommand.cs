using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl build-log ID [-f]</summary>
internal static class BuildLogCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var id = new Argument<string>("id") { Description = "Build id (from agentctl builds)" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing until the build ends" };
        var cmd = new Command("build-log", "Print a build's log") { id, follow };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var f = pr.GetValue(follow);
            using var call = c.Admin.StreamBuildLog(new StreamBuildLogRequest { Id = pr.GetValue(id)!, Follow = f },
                deadline: f ? null : c.Deadline(), cancellationToken: ct);
            await foreach (var line in call.ResponseStream.ReadAllAsync(ct))
            {
                Console.Out.WriteLine(Output.Escape(line.Line));
            }

            if (f)
            {
                var build = await c.Admin.GetBuildAsync(new GetBuildRequest { Id = pr.GetValue(id)! }, deadline: c.Deadline(), cancellationToken: ct);
                await Console.Error.WriteLineAsync($"build {build.Id} {build.State.Name()}{(build.Error.Length > 0 ? ": " + Output.Escape(build.Error) : string.Empty)}");
            }
        }));
        return cmd;
    }
}
