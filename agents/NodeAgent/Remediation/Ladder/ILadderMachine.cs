using Toolforge.Agents.NodeAgent.Checks;
using Toolforge.Agents.NodeAgent.Checks.Systemd;

namespace Toolforge.Agents.NodeAgent.Remediation.Ladder;

/// <summary>What the ladder does to this machine (outside the Kubernetes API): each throws <see cref="LadderActionException"/> with the reason when it fails.</summary>
public interface ILadderMachine
{
    /// <summary>This boot (BootIdentity: the kernel's boot id and PID 1's start): it changes with every boot, and only then.</summary>
    string BootId();

    Task RestartUnitAsync(string unit, CancellationToken ct);

    Task RebootAsync(CancellationToken ct);

    Task HardResetAsync(IReadOnlyList<string> command, TimeSpan timeout, CancellationToken ct);
}

public sealed class LadderActionException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The real machine: systemd and logind over the system D-Bus (the SystemdClient every check uses), the admin's command as a subprocess.</summary>
public sealed class DBusLadderMachine(SystemdClient systemd) : ILadderMachine
{
    private string? _bootId; // one boot for the process's whole life: read once, kept only when whole (a partial read is tried again)

    public string BootId()
    {
        if (_bootId is { } known)
        {
            return known;
        }

        try
        {
            var kernel = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            var init = InitStart();
            var id = BootIdentity.Of(kernel, init);
            if (init is not null)
            {
                _bootId = id; // without PID 1's start this boot is not fully known: not kept, read again next time
            }

            return id;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new LadderActionException($"cannot read /proc/sys/kernel/random/boot_id: {ex.Message}", ex);
        }
    }

    // PID 1's start (a container's init when the agent runs in one): null when /proc/1/stat cannot be read or parsed.
    private static string? InitStart()
    {
        try
        {
            return BootIdentity.InitStart(File.ReadAllText("/proc/1/stat"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public async Task RestartUnitAsync(string unit, CancellationToken ct)
    {
        try
        {
            await systemd.RestartUnitAsync(unit, "replace", ct).ConfigureAwait(false);
        }
        catch (SystemdException ex)
        {
            throw new LadderActionException(ex.Message, ex);
        }
    }

    public async Task RebootAsync(CancellationToken ct)
    {
        try
        {
            await systemd.RebootAsync(ct).ConfigureAwait(false);
        }
        catch (SystemdException ex)
        {
            throw new LadderActionException(ex.Message, ex);
        }
    }

    public async Task HardResetAsync(IReadOnlyList<string> command, TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            await ProcessRunner.RunDiscardingAsync(command[0], command.Skip(1), timeout, ct).ConfigureAwait(false); // its output never held (review C1)
        }
        catch (CommandFailedException ex)
        {
            throw new LadderActionException(ex.Message, ex);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new LadderActionException($"{command[0]} did not finish within {timeout.TotalSeconds:0}s: killed", ex);
        }
    }
}
