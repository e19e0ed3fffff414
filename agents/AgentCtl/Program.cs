using System.CommandLine;
using System.Globalization;
using Grpc.Core;
using Toolforge.Agents.AgentCtl;
using Toolforge.Agents.Common.Cli;
using Toolforge.Agents.Common.Tls;
using Toolforge.Agents.Common.Contracts;
using Toolforge.Agents.Contracts.V1;
using Command = System.CommandLine.Command;

// agentctl: the admins' view of the coordinator.
var server = new Option<string?>("--server") { Description = "Coordinator address, https://HOST:PORT", Recursive = true };
var cert = new Option<string?>("--cert") { Description = "Client certificate (PEM)", Recursive = true };
var key = new Option<string?>("--key") { Description = "Client private key (PEM)", Recursive = true };
var ca = new Option<string?>("--ca") { Description = "CA bundle the coordinator's certificate must chain to", Recursive = true };
var config = new Option<string?>("--config") { Description = $"Settings file (default {ClientConfig.DefaultPath})", Recursive = true };
var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the coordinator", DefaultValueFactory = _ => 10, Recursive = true };

Option<string> OutputOption()
{
    var o = new Option<string>("--output", "-o") { Description = "table, json or yaml", DefaultValueFactory = _ => "table" };
    o.AcceptOnlyFromAmong("table", "json", "yaml");
    return o;
}

var root = new RootCommand("agentctl: ask the toolforge-agents coordinator about nodes, findings and builds")
{
    Options = { server, cert, key, ca, config, timeout },
};

GlobalSettings Settings(ParseResult pr) => new(pr.GetValue(server), pr.GetValue(cert), pr.GetValue(key), pr.GetValue(ca),
    pr.GetValue(config), TimeSpan.FromSeconds(Math.Max(0.1, pr.GetValue(timeout))));

async Task<int> Run(ParseResult pr, Func<Connection, Task> action)
{
    var settings = Settings(pr);
    try
    {
        using var connection = new Connection(settings);
        await action(connection);
        return 0;
    }
    catch (CliException ex)
    {
        await Console.Error.WriteLineAsync($"agentctl: {ex.Message}");
    }
    catch (RpcException ex)
    {
        await Console.Error.WriteLineAsync($"agentctl: {Connection.Describe(ex, settings.Server ?? "the coordinator", settings.Timeout)}");
    }

    return 1;
}

void Print(string text) => Console.Out.Write(text);

// agentctl nodes
{
    var output = OutputOption();
    var state = new Option<string[]>("--state") { Description = "Only nodes in these states (ok, warning, failing, stale, missing)", AllowMultipleArgumentsPerToken = true };
    var cmd = new Command("nodes", "List nodes and their state") { output, state };
    cmd.SetAction((pr, ct) => Run(pr, async c =>
    {
        var request = new ListNodesRequest();
        foreach (var s in pr.GetValue(state) ?? [])
        {
            request.States.Add(ContractNames.ParseNodeState(s) ?? throw new CliException($"--state: unknown state \"{s}\" (ok, warning, failing, stale, missing)"));
        }

        var response = await c.Admin.ListNodesAsync(request, deadline: c.Deadline(), cancellationToken: ct);
        var format = Output.Parse(pr.GetValue(output));
        Print(format == OutputFormat.Table ? Render.Nodes(response.Nodes, DateTimeOffset.UtcNow) : Render.Message(response, format));
    }));
    root.Subcommands.Add(cmd);
}

// agentctl node NAME
{
    var output = OutputOption();
    var name = new Argument<string>("name") { Description = "Node name (its certificate's name)" };
    var cmd = new Command("node", "Show one node: checks, findings, recent events") { name, output };
    cmd.SetAction((pr, ct) => Run(pr, async c =>
    {
        var detail = await c.Admin.GetNodeAsync(new GetNodeRequest { Name = pr.GetValue(name)! }, deadline: c.Deadline(), cancellationToken: ct);
        var format = Output.Parse(pr.GetValue(output));
        Print(format == OutputFormat.Table ? Render.Node(detail, DateTimeOffset.UtcNow) : Render.Message(detail, format));
    }));
    root.Subcommands.Add(cmd);
}

// agentctl findings
{
    var output = OutputOption();
    var node = new Option<string?>("--node") { Description = "Only this node" };
    var kind = new Option<string?>("--kind") { Description = "Only this kind (missing-rule, stale-rule, foreign-image, ...)" };
    var limit = new Option<int>("--limit") { Description = "At most this many", DefaultValueFactory = _ => 1000 };
    var cmd = new Command("findings", "List what the audits found") { node, kind, limit, output };
    cmd.SetAction((pr, ct) => Run(pr, async c =>
    {
        var response = await c.Admin.ListFindingsAsync(new ListFindingsRequest
        {
            Node = pr.GetValue(node) ?? string.Empty,
            Kind = pr.GetValue(kind) ?? string.Empty,
            Limit = pr.GetValue(limit),
        }, deadline: c.Deadline(), cancellationToken: ct);
        var format = Output.Parse(pr.GetValue(output));
        Print(format == OutputFormat.Table ? Render.Findings(response.Findings, DateTimeOffset.UtcNow) : Render.Message(response, format));
    }));
    root.Subcommands.Add(cmd);
}

// agentctl builds
{
    var output = OutputOption();
    var limit = new Option<int>("--limit") { Description = "At most this many, newest first", DefaultValueFactory = _ => 50 };
    var cmd = new Command("builds", "List image builds requested through the coordinator") { limit, output };
    cmd.SetAction((pr, ct) => Run(pr, async c =>
    {
        var response = await c.Admin.ListBuildsAsync(new ListBuildsRequest { Limit = pr.GetValue(limit) }, deadline: c.Deadline(), cancellationToken: ct);
        var format = Output.Parse(pr.GetValue(output));
        Print(format == OutputFormat.Table ? Render.Builds(response.Builds, DateTimeOffset.UtcNow) : Render.Message(response, format));
    }));
    root.Subcommands.Add(cmd);
}

// agentctl build IMAGE...
{
    var output = OutputOption();
    var images = new Argument<string[]>("image") { Description = "Image paths, e.g. python311-sssd/base", Arity = ArgumentArity.OneOrMore };
    var tag = new Option<string>("--tag", "-t") { Description = "testing (default) or latest", DefaultValueFactory = _ => "testing" };
    var push = new Option<bool>("--push") { Description = "Push the images after building" };
    var noCache = new Option<bool>("--no-cache") { Description = "Build without Docker's layer cache" };
    var single = new Option<bool>("--single", "-s") { Description = "Build only the named images, not their lineage" };
    var force = new Option<bool>("--force") { Description = "Rebuild even when the inputs did not change" };
    var builder = new Option<string?>("--builder") { Description = "Builder host (default: any connected builder)" };
    var cmd = new Command("build", "Ask the builder-agent to build images (admins only)") { images, tag, push, noCache, single, force, builder, output };
    cmd.SetAction((pr, ct) => Run(pr, async c =>
    {
        var spec = new BuildRequest
        {
            Tag = pr.GetValue(tag)!,
            Push = pr.GetValue(push),
            NoCache = pr.GetValue(noCache),
            Single = pr.GetValue(single),
            Force = pr.GetValue(force),
        };
        spec.Images.AddRange(pr.GetValue(images)!);
        var build = await c.Admin.RequestBuildAsync(new RequestBuildRequest { Build = spec, Builder = pr.GetValue(builder) ?? string.Empty },
            deadline: c.Deadline(), cancellationToken: ct);
        var format = Output.Parse(pr.GetValue(output));
        Print(format == OutputFormat.Table
            ? $"build {build.Id} queued{(build.Builder.Length > 0 ? $" on {build.Builder}" : " until a builder connects")}; follow it with: agentctl build-log {build.Id} -f\n"
            : Render.Message(build, format));
    }));
    root.Subcommands.Add(cmd);
}

// agentctl build-log ID [-f]
{
    var id = new Argument<string>("id") { Description = "Build id (from agentctl builds)" };
    var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing until the build ends" };
    var cmd = new Command("build-log", "Print a build's log") { id, follow };
    cmd.SetAction((pr, ct) => Run(pr, async c =>
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
    root.Subcommands.Add(cmd);
}

// agentctl watch
{
    var output = OutputOption();
    var cmd = new Command("watch", "Print a snapshot, then every change as it happens (Ctrl-C to stop)") { output };
    cmd.SetAction((pr, ct) => Run(pr, async c =>
    {
        var format = Output.Parse(pr.GetValue(output));
        using var call = c.Admin.Watch(new WatchRequest(), cancellationToken: ct);
        try
        {
            await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
            {
                Print(format switch
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
    root.Subcommands.Add(cmd);
}

// agentctl pki DIR NAME...
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
    root.Subcommands.Add(cmd);
}

return await root.Parse(args).InvokeAsync();
