using System.Text.Json.Nodes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.Coordinator.Tests;

/// <summary>A daemon started with a bad configuration stops at once with one line naming the key.</summary>
public sealed class ConfigurationTests
{
    private static async Task<ProcessResult> StartWith(JsonObject config)
    {
        using var dir = new TempDir();
        var path = dir["coordinator.json"];
        await File.WriteAllTextAsync(path, config.ToJsonString());
        return await Run.DotnetToolAsync("toolforge-coordinator", ["--config", path], TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task PortOutOfRange_ExitsWithOneLineNamingTheKey()
    {
        var r = await StartWith(new JsonObject { ["Coordinator"] = new JsonObject { ["Port"] = 70000 } });
        Assert.Equal(78, r.ExitCode);
        var lines = r.Stderr.Trim().Split('\n');
        Assert.Single(lines);
        Assert.Contains("Coordinator:Port: must be a TCP port between 0 and 65535 (got 70000)", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("toolforge-coordinator: invalid configuration:", lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task IngestKeys_AreChecked_NaNAndZeroRefused()
    {
        foreach (var (key, value, expected) in new (string, JsonNode, string)[]
        {
            ("ReconnectRate", "NaN", "Coordinator:ReconnectRate: must be at least 1 and at most 1000000 nodes a second (got NaN)"),
            ("ReconnectRate", 0, "Coordinator:ReconnectRate: must be at least 1 and at most 1000000 nodes a second (got 0)"),
            ("ReportsInFlight", 0, "Coordinator:ReportsInFlight"),
        })
        {
            var r = await StartWith(new JsonObject { ["Coordinator"] = new JsonObject { [key] = value } });
            Assert.Equal(78, r.ExitCode);
            Assert.Single(r.Stderr.Trim().Split('\n'));
            Assert.Contains(expected, r.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task StoreSettings_AreChecked_AndAPasswordInTheConnectionStringIsRefused()
    {
        var r = await StartWith(new JsonObject { ["Coordinator"] = new JsonObject { ["Store"] = "mysql" } });
        Assert.Equal(78, r.ExitCode);
        Assert.Contains("Coordinator:Store: must be \"sqlite\" or \"postgresql\" (got \"mysql\")", r.Stderr, StringComparison.Ordinal);

        r = await StartWith(new JsonObject
        {
            ["Coordinator"] = new JsonObject
            {
                ["Store"] = "postgresql",
                ["PostgreSql"] = new JsonObject { ["ConnectionString"] = "Host=db1;Database=c;Username=u;Password=hunter2" },
            },
        });
        Assert.Equal(78, r.ExitCode);
        Assert.Contains("Coordinator:PostgreSql:ConnectionString: holds a password; put it in PasswordFile instead", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", r.Stderr, StringComparison.Ordinal);

        r = await StartWith(new JsonObject { ["Coordinator"] = new JsonObject { ["Store"] = "postgresql", ["PostgreSql"] = new JsonObject { ["ConectionString"] = "x" } } });
        Assert.Equal(78, r.ExitCode);
        Assert.Contains("Coordinator:PostgreSql:ConectionString: unknown key", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("Coordinator:PostgreSql:ConnectionString: required when Store is \"postgresql\"", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RemediationPools_AreChecked_KeyByKey()
    {
        var pool = new JsonObject { ["Nodes"] = new JsonArray("w-*"), ["MaxConcurrent"] = 0, ["LeaseTtl"] = "00:00:10", ["Windows"] = new JsonArray("weekdays 8-16"), ["MaxConcurent"] = 2, ["AlertMatchers"] = new JsonArray("severity=critical") };
        var other = new JsonObject { ["Nodes"] = new JsonArray("w-*") };
        var r = await StartWith(new JsonObject { ["Coordinator"] = new JsonObject { ["Remediation"] = new JsonObject { ["Pools"] = new JsonObject { ["nfs"] = pool, ["Bad Name"] = other } } } });
        Assert.Equal(78, r.ExitCode);
        foreach (var expected in new[]
        {
            "Coordinator:Remediation:Pools:nfs:MaxConcurrent: must be between 1 and 1000 (got 0)",
            "Coordinator:Remediation:Pools:nfs:LeaseTtl: must be at least 00:01:00",
            "Coordinator:Remediation:Pools:nfs:Windows:0: \"weekdays 8-16\" is not a window such as",
            "Coordinator:Remediation:Pools:nfs:MaxConcurent: unknown key",
            "Coordinator:Remediation:Pools:Bad Name: a pool name is 1-63 of a-z, 0-9 and -",
            "is in pool",
            "Coordinator:Remediation:Pools:nfs:AlertMatchers:0: \"severity=critical\" is not an Alertmanager matcher",
            "Coordinator:Remediation:Pools:nfs:AlertMatchers: set Coordinator:Remediation:Alertmanager:Url too",
        })
        {
            Assert.Contains(expected, r.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task UnknownKey_IsNamed()
    {
        var r = await StartWith(new JsonObject { ["Metrics"] = new JsonObject { ["Prot"] = 1 } });
        Assert.Equal(78, r.ExitCode);
        Assert.Contains("Metrics:Prot: unknown key", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValueOfTheWrongType_IsNamed()
    {
        var r = await StartWith(new JsonObject { ["Coordinator"] = new JsonObject { ["HeartbeatInterval"] = "soon" } });
        Assert.Equal(78, r.ExitCode);
        Assert.Contains("Coordinator:HeartbeatInterval", r.Stderr, StringComparison.Ordinal);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task MissingConfigFile_IsNamed()
    {
        var r = await Run.DotnetToolAsync("toolforge-coordinator", ["--config", "/nonexistent/coordinator.json"]);
        Assert.Equal(78, r.ExitCode);
        Assert.Contains("--config: file /nonexistent/coordinator.json does not exist", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RelativeConfigPath_IsReadFromTheWorkingDirectory()
    {
        // The configuration builder alone would look for it beside the program and crash with a stack trace.
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["coordinator.json"], new JsonObject { ["Coordinator"] = new JsonObject { ["Port"] = 70000 } }.ToJsonString());
        var r = await Run.DotnetToolAsync("toolforge-coordinator", ["--config", "coordinator.json"], TimeSpan.FromSeconds(30), workingDirectory: dir.Path);
        Assert.Equal(78, r.ExitCode);
        Assert.Contains("Coordinator:Port: must be a TCP port", r.Stderr, StringComparison.Ordinal);
        Assert.Single(r.Stderr.Trim().Split('\n'));

        var missing = await Run.DotnetToolAsync("toolforge-coordinator", ["--config", "nothere.json"], TimeSpan.FromSeconds(30), workingDirectory: dir.Path);
        Assert.Equal(78, missing.ExitCode);
        Assert.Single(missing.Stderr.Trim().Split('\n'));
        Assert.Contains("nothere.json does not exist", missing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InvalidJson_IsNamed()
    {
        using var dir = new TempDir();
        var path = dir["coordinator.json"];
        await File.WriteAllTextAsync(path, "{ \"Coordinator\": { \"Port\": 1, } ");
        var r = await Run.DotnetToolAsync("toolforge-coordinator", ["--config", path]);
        Assert.Equal(78, r.ExitCode);
        Assert.Contains(path, r.Stderr, StringComparison.Ordinal);
    }
}
