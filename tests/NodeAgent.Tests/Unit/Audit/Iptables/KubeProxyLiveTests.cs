using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Iptables;
using Toolforge.Agents.NodeAgent.Audit.KubeProxy;
using Toolforge.Agents.NodeAgent.Audit.Nftables;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class KubeProxyLiveTests
{
    [Fact]
    public void OtherBackend_IsFoundBySwappingTheSaveProgram()
    {
        Assert.Equal(("iptables-legacy-save", new List<string>(), "nft", "legacy"), Simplify(IptablesBackends.Other("iptables-save", [])));
        Assert.Equal(("ip", new List<string> { "netns", "exec", "x", "iptables-nft-save" }, "legacy", "nft"),
            Simplify(IptablesBackends.Other("ip", ["netns", "exec", "x", "iptables-legacy-save"])));
        Assert.Null(IptablesBackends.Other("cat", ["dump.txt"]));

        static (string, List<string>, string, string)? Simplify((string Command, List<string> Arguments, string Backend, string OtherBackend)? o) =>
            o is { } v ? (v.Command, v.Arguments, v.Backend, v.OtherBackend) : null;
    }
}
