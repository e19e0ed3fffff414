namespace Toolforge.Agents.NodeAgent.Remediation.Ladder;

/// <summary>
/// The machine's boot as the ladder records it: the kernel's boot id and, after a '/', the start time of PID 1 (field 22
/// of /proc/1/stat, clock ticks since the kernel booted). The boot id alone is not enough under the agent's own unit:
/// in a container booted by a container manager (systemd-nspawn gives each boot its own boot id by mounting a file over
/// /proc/sys/kernel/random/boot_id), the unit's ProtectKernelTunables= and ProtectControlGroups= set up /proc again and
/// the agent reads the host kernel's id, which a reboot of the container does not change: the ladder never saw the
/// reboot it asked for and stalled. A new init is a new boot there; on a VM or bare metal the kernel's id changes.
/// </summary>
public static class BootIdentity
{
    /// <summary>The recorded form: "KERNEL-BOOT-ID/INIT-START", or the kernel's id alone when PID 1's start is unknown.</summary>
    public static string Of(string kernelBootId, string? initStart) => initStart is null ? kernelBootId : $"{kernelBootId}/{initStart}";

    /// <summary>
    /// Whether two recorded boots are the same: the kernel's ids equal and, when both know it, PID 1's start too. A
    /// record written before PID 1's start was kept (the kernel's id alone) matches any init of the same kernel boot, so
    /// an agent upgraded mid-incident does not take its own upgrade for a reboot.
    /// </summary>
    public static bool SameBoot(string recorded, string now)
    {
        var (kernelA, initA) = Split(recorded);
        var (kernelB, initB) = Split(now);
        return string.Equals(kernelA, kernelB, StringComparison.Ordinal) && (initA is null || initB is null || string.Equals(initA, initB, StringComparison.Ordinal));
    }

    /// <summary>PID 1's start time from the text of /proc/1/stat (the 22nd field; the command, field 2, may hold spaces and ')'), or null.</summary>
    public static string? InitStart(string procStat)
    {
        var close = procStat.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        // After "pid (comm)": field 3 (state) is the first; the start time is field 22, the 20th from there.
        var fields = procStat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 20 && ulong.TryParse(fields[19], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ticks)
            ? ticks.ToString(System.Globalization.CultureInfo.InvariantCulture)
            : null;
    }

    private static (string Kernel, string? Init) Split(string id)
    {
        var slash = id.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (id, null) : (id[..slash], id[(slash + 1)..]);
    }
}
