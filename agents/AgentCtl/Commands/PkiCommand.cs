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
            var serverNames = pr.GetValue(servers) ?? [];
            var clientNames = pr.GetValue(names) ?? [];

            // Every name is checked before anything is written: a bad one leaves no half-written folder.
            foreach (var (name, flag) in serverNames.Select(n => (n, "--server-name")).Concat(clientNames.Select(n => (n, "name"))))
            {
                if (Problem(name) is { } problem)
                {
                    Console.Error.WriteLine($"agentctl pki: {flag} \"{Output.Escape(name)}\": {problem}");
                    return Common.Hosting.ExitCodes.Usage;
                }
            }

            if (serverNames.Concat(clientNames).GroupBy(n => n, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1) is { } twice)
            {
                Console.Error.WriteLine($"agentctl pki: \"{Output.Escape(twice.Key)}\" is named twice (its files would be written twice)");
                return Common.Hosting.ExitCodes.Usage;
            }

            if (File.Exists(d))
            {
                Console.Error.WriteLine($"agentctl pki: directory \"{Output.Escape(d)}\" is a file, not a directory");
                return Common.Hosting.ExitCodes.Usage;
            }

            bool reuse;
            try
            {
                DevPki.CreatePrivateDirectory(d);
                reuse = File.Exists(Path.Combine(d, "ca.pem")) && File.Exists(Path.Combine(d, "ca.key"));
                using var pki = reuse ? DevPki.Load(d) : DevPki.Create();
                if (!reuse)
                {
                    pki.WriteCa(d);
                }

                foreach (var n in serverNames)
                {
                    pki.IssueTo(d, n, server: true);
                }

                foreach (var n in clientNames)
                {
                    pki.IssueTo(d, n);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                Console.Error.WriteLine($"agentctl pki: {Output.Escape(d)}: {Output.Escape(ex.Message)}");
                return Common.Hosting.ExitCodes.Usage;
            }

            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{(reuse ? "reused the CA in" : "made a new CA in")} {d}; wrote {serverNames.Length + clientNames.Length} certificate(s)"));
            return 0;
        });
        return cmd;
    }

    /// <summary>Why <paramref name="name"/> cannot be a certificate's name (its files are NAME.pem and NAME.key), or null.</summary>
    internal static string? Problem(string name)
    {
        if (string.Equals(name, "ca", StringComparison.OrdinalIgnoreCase))
        {
            return "is the CA's own file name (ca.pem, ca.key): it would overwrite the CA";
        }

        if (name.Length is 0 or > 253)
        {
            return "must be a DNS name of 1 to 253 characters";
        }

        foreach (var label in name.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-' || !label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                return "is not a DNS name (labels of letters, digits and inner hyphens, separated by single dots)";
            }
        }

        return null;
    }
}
