using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Toolforge.Agents.Contracts.V1;
using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Checks.Systemd;
using Toolforge.Agents.NodeAgent.Kubernetes;
using Toolforge.Agents.NodeAgent.Remediation;
using Toolforge.Agents.TestSupport;
using Toolforge.Agents.NodeAgent.Checks.Kubelet;
using Toolforge.Agents.NodeAgent.Checks.Docker;

namespace Toolforge.Agents.NodeAgent.Tests;

/// <summary>kubelet's unit over D-Bus against a real systemd (a booted Debian container), and D-Bus error paths.</summary>
public sealed partial class SystemdTests
{
    private static readonly Dictionary<string, string> Units = new()
    {
        ["kubelet.service"] = "[Unit]\nDescription=stand-in kubelet\n[Service]\nExecStart=/bin/sleep infinity\nRestart=on-failure\n",
        ["crashy.service"] = "[Unit]\nDescription=exits at once\n[Service]\nExecStart=/bin/false\n",
        ["flappy.service"] = "[Unit]\nDescription=crashes and is restarted\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c 'sleep 0.3; exit 3'\nRestart=always\nRestartSec=0.5\n",
    };

    [Fact]
    public async Task RealSystemd_ActiveFailedAndRestarting_AreReadCorrectly_AndRestartsCounted()
    {
        await using var c = await SystemdContainer.BootAsync(Units);
        using var systemd = new SystemdClient(c.BusAddress, TimeSpan.FromSeconds(5));

        await c.SystemctlAsync("start", "kubelet.service");
        var kubelet = await systemd.GetUnitAsync("kubelet.service", CancellationToken.None);
        Assert.Equal(("loaded", "active", "running"), (kubelet.LoadState, kubelet.ActiveState, kubelet.SubState));
        Assert.Equal(CheckState.Ok, UnitJudge.Judge(kubelet).State);
        Assert.NotEqual(0UL, kubelet.InactiveExitTimestampMicros);

        await c.SystemctlAsync("start", "crashy.service");
        Assert.True(await Peer.EventuallyAsync(() => systemd.GetUnitAsync("crashy.service", CancellationToken.None).GetAwaiter().GetResult().ActiveState == "failed", TimeSpan.FromSeconds(10)));
        var (crashyState, crashyMessage) = UnitJudge.Judge(await systemd.GetUnitAsync("crashy.service", CancellationToken.None));
        Assert.Equal(CheckState.Failing, crashyState);
        Assert.StartsWith("failed:", crashyMessage, StringComparison.Ordinal);

        var missing = await systemd.GetUnitAsync("no-such.service", CancellationToken.None);
        Assert.Equal("not-found", missing.LoadState);

        await c.SystemctlAsync("start", "flappy.service");
        var flaps = new FlapTracker(TimeSpan.FromMinutes(20));
        var sawRestarting = false;
        var sw = Stopwatch.StartNew();
        var counted = 0;
        while (sw.Elapsed < TimeSpan.FromSeconds(20) && counted < 5)
        {
            var u = await systemd.GetUnitAsync("flappy.service", CancellationToken.None);
            sawRestarting |= u.ActiveState == "activating" && u.SubState == "auto-restart";
            counted = flaps.Observe(DateTimeOffset.UtcNow, u.NRestarts);
            await Task.Delay(150);
        }

        Assert.True(counted >= 5, $"counted {counted} restarts");
        Assert.True(sawRestarting, "never saw activating (auto-restart)");
        var flappy = await systemd.GetUnitAsync("flappy.service", CancellationToken.None);
        Assert.True(flappy.NRestarts >= 5, $"NRestarts={flappy.NRestarts}");
    }

    [Fact]
    public async Task Remediation_RestartsTheFailedUnit_OncePerCooldown_AndReportsIt()
    {
        await using var c = await SystemdContainer.BootAsync(Units);
        using var dir = new TempDir();
        using var systemd = new SystemdClient(c.BusAddress, TimeSpan.FromSeconds(5));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var state = Support.State(time);
        var kubelet = Support.Options(new KubeletOptions { HealthzUrl = $"http://127.0.0.1:{Peer.FreePort()}/healthz", Timeout = TimeSpan.FromSeconds(1) });
        var remediate = Support.Options(new RemediationOptions { Kubelet = new UnitRemediation { Enabled = true, FailingFor = TimeSpan.FromMinutes(2), Cooldown = TimeSpan.FromMinutes(30) } });
        var check = new KubeletCheck(systemd, new SimpleHttp(), kubelet, state, time, NullLogger<KubeletCheck>.Instance);
        var remediation = new RemediationService(systemd, state, remediate, kubelet, Support.Options(new DockerOptions()), Support.Options(new NodeOptions { StateDirectory = dir.Path }),
            time, NullLogger<RemediationService>.Instance);

        await c.SystemctlAsync("stop", "kubelet.service");
        await check.RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Failing, state.GetCheck(KubeletCheck.Unit)!.State);

        await remediation.StartAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(1));
        await Task.Delay(300);
        Assert.Equal("inactive", await c.SystemctlAsync("is-active", "kubelet.service")); // not failing long enough yet

        // The service's timer may be created only now (.NET 10 runs ExecuteAsync on the thread pool, late under load):
        // keep the fake clock moving in its 5 s steps until the restart is seen.
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.True(await Peer.EventuallyAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(5));
            return c.SystemctlAsync("is-active", "kubelet.service").GetAwaiter().GetResult() == "active";
        }, TimeSpan.FromSeconds(30)));
        Assert.True(await Peer.EventuallyAsync(() => state.Snapshot(out _).Events.Count > 0, TimeSpan.FromSeconds(10)));
        var e = Assert.Single(state.Snapshot(out _).Events);
        Assert.Equal("remediation-restart", e.Kind);
        Assert.Equal("kubelet.service", e.Details["unit"]);

        // Still failing (the check has not run again), but the cooldown holds.
        await c.SystemctlAsync("stop", "kubelet.service");
        time.Advance(TimeSpan.FromMinutes(5));
        await Task.Delay(500);
        Assert.Equal("inactive", await c.SystemctlAsync("is-active", "kubelet.service"));
        Assert.Single(state.Snapshot(out _).Events);
        await remediation.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task DBusErrorPaths_NoSystemdOnTheBus_AndAPeerThatNeverAnswers()
    {
        var daemon = Peer.Require("dbus-daemon", "dbus");
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir["bus.conf"], $"""
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig><type>custom</type><listen>unix:path={dir["bus"]}</listen><auth>EXTERNAL</auth>
            <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/><allow user="*"/></policy></busconfig>
            """);
        await using var bus = BackgroundProcess.Start(daemon, ["--config-file", dir["bus.conf"], "--nofork", "--nopidfile"]);
        Assert.True(await Peer.EventuallyAsync(() => File.Exists(dir["bus"]), TimeSpan.FromSeconds(10)), bus.Output);

        using var noSystemd = new SystemdClient($"unix:path={dir["bus"]}", TimeSpan.FromSeconds(2));
        var ex = await Assert.ThrowsAsync<SystemdException>(() => noSystemd.GetUnitAsync("kubelet.service", CancellationToken.None));
        Assert.Contains("org.freedesktop.DBus.Error.ServiceUnknown", ex.Message, StringComparison.Ordinal);

        // A socket that accepts and never speaks: the call gives up at its deadline.
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        silent.Bind(new UnixDomainSocketEndPoint(dir["silent"]));
        silent.Listen(4);
        using var hung = new SystemdClient($"unix:path={dir["silent"]}", TimeSpan.FromSeconds(1));
        var sw = Stopwatch.StartNew();
        var timeout = await Assert.ThrowsAsync<SystemdException>(() => hung.GetUnitAsync("kubelet.service", CancellationToken.None));
        Assert.Contains("did not answer within 1s", timeout.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3));

        // The check turns both into "unknown", not a crash.
        var state = Support.State();
        var check = new KubeletCheck(hung, new SimpleHttp(), Support.Options(new KubeletOptions { HealthzUrl = $"http://127.0.0.1:{Peer.FreePort()}/", Timeout = TimeSpan.FromSeconds(1) }),
            state, TimeProvider.System, NullLogger<KubeletCheck>.Instance);
        await check.RunGuardedAsync(CancellationToken.None);
        Assert.Equal(CheckState.Unknown, state.GetCheck(KubeletCheck.Unit)!.State);
        Assert.Equal(CheckState.Failing, state.GetCheck(KubeletCheck.Healthz)!.State);
    }

    private sealed class SimpleHttp : IHttpClientFactory
    {
        public HttpClient CreateClient(string name) => new();
    }
}
