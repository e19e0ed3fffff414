using Toolforge.Agents.NodeAgent.Checks.Systemd;
using Toolforge.Agents.NodeAgent.Remediation.Ladder;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.NodeAgent.Tests.Remediation;

/// <summary>
/// The ladder's machine (DBusLadderMachine) against real systemd and logind in a booted Debian container
/// (systemd-nspawn; its system bus reached from the host): the runtime's unit restarted through RestartUnit, and the
/// reboot asked of logind (org.freedesktop.login1.Manager.Reboot) rebooting the container — nspawn ends with 133, as
/// it does for a reboot asked inside it.
/// </summary>
public sealed class LadderMachineTests
{
    private const string Containerd = """
        [Unit]
        Description=stand-in for containerd (the ladder's runtime restart)
        [Service]
        ExecStart=/bin/sleep infinity
        [Install]
        WantedBy=multi-user.target
        """;

    [Fact]
    public async Task TheRuntimesUnit_IsRestartedOverDBus_AndLogindReboots_TheBootedContainer()
    {
        await using var container = await SystemdContainer.BootAsync(new Dictionary<string, string> { ["containerd.service"] = Containerd });
        using var systemd = new SystemdClient(container.BusAddress, TimeSpan.FromSeconds(20));
        var machine = new DBusLadderMachine(systemd);

        Assert.Equal(string.Empty, (await container.ExecAsync("systemctl", "start", "containerd.service")).Stderr.Trim());
        var before = await systemd.GetUnitAsync("containerd.service", CancellationToken.None);
        Assert.Equal("active", before.ActiveState);
        var pid = await container.SystemctlAsync("show", "-P", "MainPID", "containerd.service");
        await machine.RestartUnitAsync("containerd.service", CancellationToken.None);
        for (var i = 0; i < 100 && await container.SystemctlAsync("show", "-P", "MainPID", "containerd.service") is var now && (now == pid || now == "0"); i++)
        {
            await Task.Delay(100); // the restart job runs after RestartUnit returns: wait for its new main process
        }

        Assert.NotEqual(pid, await container.SystemctlAsync("show", "-P", "MainPID", "containerd.service"));
        Assert.Equal("active", (await systemd.GetUnitAsync("containerd.service", CancellationToken.None)).ActiveState);

        // A unit that does not exist: systemd's own error, said.
        var missing = await Assert.ThrowsAsync<LadderActionException>(() => machine.RestartUnitAsync("no-such-runtime.service", CancellationToken.None));
        Assert.Contains("org.freedesktop.systemd1.NoSuchUnit", missing.Message, StringComparison.Ordinal);

        Assert.Null(await container.ExitedAsync(TimeSpan.Zero));
        await machine.RebootAsync(CancellationToken.None);
        Assert.Equal(133, await container.ExitedAsync(TimeSpan.FromMinutes(2)));
    }
}
