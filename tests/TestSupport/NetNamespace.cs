
namespace Toolforge.Agents.TestSupport;

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

    /// <summary>"ip netns exec NAME" before a command line: what runs a program inside this namespace.</summary>
    public string[] Exec(params string[] command) => ["netns", "exec", Name, .. command];

    /// <summary>Runs a program inside the namespace; fails the test with its stderr when it fails.</summary>
    public async Task<ProcessResult> RunAsync(string program, params string[] args)
    {
        var r = await Run.ProcessAsync("ip", Exec([program, .. args]), TimeSpan.FromMinutes(2));
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} in {Name} failed: {r.Stderr}");
        }

        return r;
    }

    /// <summary>Brings lo up (a new namespace has it down).</summary>
    public Task LoopbackUpAsync() => RunAsync("ip", "link", "set", "lo", "up");

    /// <summary>
    /// Joins this namespace and <paramref name="other"/> with a veth pair: this end gets <paramref name="here"/>, the
    /// other <paramref name="there"/> (both CIDR, e.g. 10.201.1.1/24).
    /// </summary>
    public async Task LinkAsync(NetNamespace other, string here, string there)
    {
        var a = "v" + Guid.NewGuid().ToString("N")[..8];
        var b = "v" + Guid.NewGuid().ToString("N")[..8];
        await RunAsync("ip", "link", "add", a, "type", "veth", "peer", "name", b);
        await RunAsync("ip", "link", "set", b, "netns", other.Name);
        await RunAsync("ip", "addr", "add", here, "dev", a);
        await RunAsync("ip", "link", "set", a, "up");
        await other.RunAsync("ip", "addr", "add", there, "dev", b);
        await other.RunAsync("ip", "link", "set", b, "up");
    }

    public async ValueTask DisposeAsync()
    {
        var r = await Run.ProcessAsync("ip", ["netns", "del", Name]);
        if (r.ExitCode != 0)
        {
            await Console.Error.WriteLineAsync($"could not delete network namespace {Name}: {r.Stderr}");
        }
    }
}
