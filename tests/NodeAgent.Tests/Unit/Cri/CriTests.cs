using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Audit.Tenant;
using Toolforge.Agents.NodeAgent.Cri;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests;

public sealed partial class CriTests
{
    [Fact]
    public void RuntimeSelection_Auto_PrefersCri_ThenDocker_ElseCri()
    {
        static (bool, bool) Auto(params string[] present) => RuntimeSelection.Resolve(RuntimeMode.Auto, "unix:///run/c.sock", "unix:///run/d.sock", present.Contains);
        Assert.Equal((true, false), Auto("/run/c.sock", "/run/d.sock"));
        Assert.Equal((false, true), Auto("/run/d.sock"));
        Assert.Equal((true, false), Auto());
    }

    [Fact]
    public void UserOf_ReadsTheRuntimeSpec_PrefersContainerStatusUser_AndSaysWhyWhenItCannot()
    {
        var spec = new Cri.V1.ContainerStatusResponse { Status = new Cri.V1.ContainerStatus() };
        spec.Info["info"] = """{"runtimeSpec":{"process":{"user":{"uid":52000,"gid":52000}}}}""";
        Assert.Equal((52000L, (string?)null), CriPodContainers.UserOf(spec));

        var typed = new Cri.V1.ContainerStatusResponse { Status = new Cri.V1.ContainerStatus { User = new Cri.V1.ContainerUser { Linux = new Cri.V1.LinuxContainerUser { Uid = 0 } } } };
        Assert.Equal((0L, (string?)null), CriPodContainers.UserOf(typed));

        var none = new Cri.V1.ContainerStatusResponse { Status = new Cri.V1.ContainerStatus() };
        Assert.Null(CriPodContainers.UserOf(none).Uid);
        Assert.Contains("verbose info", CriPodContainers.UserOf(none).Problem, StringComparison.Ordinal);
        none.Info["info"] = "{\"runtimeSpec\":{}}";
        Assert.Contains("no process.user.uid", CriPodContainers.UserOf(none).Problem, StringComparison.Ordinal);
    }
}
