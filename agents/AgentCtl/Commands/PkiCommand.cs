using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

namespace Toolforge.Agents.AgentCtl.Commands;

/// <summary>agentctl pki DIR NAME...</summary>
internal static class PkiCommand
{
    public static Command Create(AgentCtlOptions g)
    {
        var dir = new Argument<string>("directory") { Description = "Where to write ca.pem/ca.key and NAME.pem/NAME.key" };
        var names = new Argument<string[]>("name") { Description = "Client certificates to issue (node or admin names)", Arity = ArgumentArity.ZeroOrMore };
        var servers = new Option<string[]>("--server-name") { Description = "Server certificates to issue (also valid for localhost and 127.0.0.1)", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("pki", "Make a throwaway CA and certificates for development and tests (production uses puppet's)") { dir, names, servers };
        cmd.SetAction(pr =>
        {
            var d = pr.GetValue(dir)!;
            DevPki.CreatePrivateDirectory(d);
            using var pki = File.Exists(Path.Combine(d, "ca.pem")) && File.Exists(Path.Combine(d, "ca.key")) ? DevPki.Load(d) : DevPki.Create();
            pki.WriteCa(d);
            foreach (var s in pr.GetValue(servers) ?? [])
            {
                pki.IssueTo(d, s, server: true);
            }

            foreach (var n in pr.GetValue(names) ?? [])
            {
                pki.IssueTo(d, n);
            }

            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote CA and {(pr.GetValue(servers)?.Length ?? 0) + (pr.GetValue(names)?.Length ?? 0)} certificate(s) to {d}"));
            return 0;
        });
        return cmd;
    }
}
