using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl watch</summary>
internal static class WatchCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var output = AgentCtlOptions.Output();
        var cmd = new Command("watch", "Print a snapshot, then every change as it happens (Ctrl-C to stop)") { output };
        cmd.SetAction((pr, ct) => g.Run(pr, async c =>
        {
            var format = Output.Parse(pr.GetValue(output));
            using var call = c.Admin.Watch(new WatchRequest(), cancellationToken: ct);
            try
            {
                await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                {
                    AgentCtlOptions.Print(format switch
                    {
                        OutputFormat.Json => Render.CompactJson(e),
                        OutputFormat.Yaml => "---\n" + Render.Message(e, format),
                        _ => Render.WatchLine(e, DateTimeOffset.UtcNow),
                    });
                    await Console.Out.FlushAsync(ct);
                }
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && ct.IsCancellationRequested)
            {
                // Ctrl-C
            }
        }));
        return cmd;
    }
}
