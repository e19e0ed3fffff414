using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>A network namespace of the test's own, with real iptables in it; deleted at dispose.</summary>
public sealed class NetNamespace : IAsyncDisposable
{
    private NetNamespace(string name) => Name = name;

    public string Name { get; }

    public static async Task<NetNamespace> CreateAsync()
    {
        Peer.Require("ip", "iproute2");
        Peer.Require("iptables-restore", "iptables");
        var name = "tfa" + Guid.NewGuid().ToString("N")[..8];
        var r = await Run.ProcessAsync("ip", ["netns", "add", name]);
        if (r.ExitCode != 0)
        {
            throw Peer.Missing("network namespaces", $"ip netns add failed: {r.Stderr}");
        }

        return new NetNamespace(name);
    }

    public async Task RestoreAsync(string rules)
    {
        var r = await Run.ProcessAsync("ip", ["netns", "exec", Name, "iptables-restore"], TimeSpan.FromMinutes(5), stdin: rules);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"iptables-restore failed: {r.Stderr}");
        }
    }

    public async Task IptablesAsync(params string[] args)
    {
        var r = await Run.ProcessAsync("ip", ["netns", "exec", Name, "iptables", .. args]);
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"iptables {string.Join(' ', args)} failed: {r.Stderr}");
        }
    }

    public string[] SaveCommand => ["netns", "exec", Name, "iptables-save"];

    public async ValueTask DisposeAsync() => await Run.ProcessAsync("ip", ["netns", "del", Name]);
}
