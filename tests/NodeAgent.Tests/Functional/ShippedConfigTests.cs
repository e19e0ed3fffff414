using System.Collections;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Common.Hosting;
using Toolforge.Agents.Common.Logging;
using Toolforge.Agents.Common.Reporting;
using Toolforge.Agents.Contracts.V1;
using Microsoft.Extensions.DependencyInjection;
using Toolforge.Agents.Common.Options;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Checks.Processes;
using Toolforge.Agents.NodeAgent.Cli;
using Toolforge.Agents.NodeAgent.Journal;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class ShippedConfigTests
{
    [Fact]
    public async Task IgnoreCommandsEmpty_IgnoresNothing_AndATenantProcessNamedLikeAKernelThread_IsCounted()
    {
        await using var tenant = await FrozenProcess.StartAsync(comm: "jbd2/x");
        var options = BindJson(new JsonObject
        {
            ["NodeAgent"] = new JsonObject
            {
                ["StuckProcesses"] = new JsonObject { ["After"] = "00:02:00", ["Warning"] = 1, ["Failing"] = 50, ["IgnoreCommands"] = new JsonArray() },
            },
        }).Get<StuckProcessesOptions>();
        Assert.Empty(options.IgnoreCommands);
        Assert.Contains("jbd2/*", options.IgnoreKernelThreads); // the default, for kernel threads only

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = Support.State(time);
        var check = new StuckProcessCheck(Support.Options(options), state, time, NullLogger<StuckProcessCheck>.Instance);
        await check.RunGuardedAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(3));
        await check.RunGuardedAsync(CancellationToken.None);
        var f = Assert.Single(state.GetFindings(StuckProcessCheck.Check), f => f.Subject == $"{tenant.Pid} jbd2/x");
        Assert.Equal("stuck-process", f.Kind);
        Assert.NotEqual(CheckState.Ok, state.GetCheck(StuckProcessCheck.Check)!.State);
    }

    [Theory]
    [MemberData(nameof(Mistakes))]
    public async Task EachMistake_StopsTheDaemon_WithExit78_AndOneLineNamingIt(string name, string file, string expected)
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["node-agent.json"], file);
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["--config", dir["node-agent.json"]], TimeSpan.FromSeconds(30));
        AssertOneConfigLine(r, expected, name);
    }

    [Fact]
    public async Task AnUnknownToolforgeVariable_IsNamed_AndADirectoryAsConfig_IsCalledADirectory()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["node-agent.json"], "{}");
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["--config", dir["node-agent.json"]], TimeSpan.FromSeconds(30),
            env: new Dictionary<string, string> { ["TOOLFORGE_NodeAgent__Kubelet__Intervall"] = "00:00:10" });
        AssertOneConfigLine(r, "NodeAgent:Kubelet:Intervall: unknown key (from the environment variable TOOLFORGE_NodeAgent__Kubelet__Intervall)", "variable");

        r = await Run.DotnetToolAsync("toolforge-node-agent", ["--config", dir["node-agent.json"]], TimeSpan.FromSeconds(30),
            env: new Dictionary<string, string> { ["TOOLFORGE_Nodeagent_Kubelet"] = "x" });
        AssertOneConfigLine(r, "Nodeagent_Kubelet: unknown section (from the environment variable TOOLFORGE_Nodeagent_Kubelet)", "section variable");

        r = await Run.DotnetToolAsync("toolforge-node-agent", ["--config", dir.Path], TimeSpan.FromSeconds(30));
        AssertOneConfigLine(r, $"--config: {dir.Path}: is a directory, not a configuration file", "directory");
    }

    [Fact]
    public async Task APodListAsTheServicesFile_IsRefused_NotAuditedAsACleanCluster()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["pods.json"], """{ "apiVersion": "v1", "kind": "List", "items": [ { "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p", "namespace": "tool-a" } } ] }""");
        await File.WriteAllTextAsync(dir["node-agent.json"], new JsonObject
        {
            ["NodeAgent"] = new JsonObject { ["Kubernetes"] = new JsonObject { ["Source"] = "file", ["File"] = dir["pods.json"] } },
            ["Metrics"] = new JsonObject { ["Port"] = 0 },
        }.ToJsonString());
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["--config", dir["node-agent.json"]], TimeSpan.FromSeconds(30));
        AssertOneConfigLine(r, $"NodeAgent:Kubernetes:File: {dir["pods.json"]} holds no Service (it holds 1 Pod)", "pod list");
    }

    [Fact]
    public async Task AMetricsPortInUse_StopsTheDaemonWith78()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["node-agent.json"], new JsonObject
        {
            ["NodeAgent"] = new JsonObject { ["Kubernetes"] = new JsonObject { ["Enabled"] = false } },
            ["Metrics"] = new JsonObject { ["Address"] = "127.0.0.1", ["Port"] = port },
        }.ToJsonString());
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["--config", dir["node-agent.json"]], TimeSpan.FromSeconds(30));
        AssertOneConfigLine(r, $"Metrics:Port: cannot serve /metrics on 127.0.0.1:{port}", "metrics port");
    }

    [Fact]
    public async Task AHugeValue_IsNotEchoedInFull()
    {
        using var dir = new TempDir();
        var huge = new string('a', 5_000_000);
        await File.WriteAllTextAsync(dir["node-agent.json"], $$"""{ "NodeAgent": { "Runtime": "{{huge}}" } }""");
        var r = await Run.DotnetToolAsync("toolforge-node-agent", ["--config", dir["node-agent.json"]], TimeSpan.FromSeconds(30));
        Assert.Equal(ExitCodes.Config, r.ExitCode);
        Assert.True(r.Stderr.Length < 5_000, $"{r.Stderr.Length} characters on stderr");
        Assert.Contains("NodeAgent:Runtime", r.Stderr, StringComparison.Ordinal);
    }
}
