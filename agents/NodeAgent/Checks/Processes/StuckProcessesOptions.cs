using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Checks.Processes;

/// <summary>NodeAgent:StuckProcesses: processes held in uninterruptible sleep ('D'), NFS's classic failure.</summary>
public sealed class StuckProcessesOptions() : TimedCheckOptions(TimeSpan.FromSeconds(30))
{
    public const string Section = "NodeAgent:StuckProcesses";

    /// <summary>A process counts as stuck once every scan for this long saw it in D.</summary>
    public TimeSpan After { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>This many stuck processes make the check warning ...</summary>
    public int Warning { get; set; } = 1;

    /// <summary>... and this many failing (and the StuckProcesses condition True).</summary>
    public int Failing { get; set; } = 10;

    /// <summary>
    /// Kernel threads (comm, `*` and `?` globs) that normally sit in D and are never counted. Matched against kernel
    /// threads only (PF_KTHREAD): a tenant's process that names itself `jbd2/x` is counted like any other.
    /// </summary>
    public List<string> IgnoreKernelThreads { get; set; } = ["rcu_tasks_*", "kthrotld", "jbd2/*", "md*_raid*", "txg_sync", "txg_quiesce", "z_*"];

    /// <summary>Any process (kernel thread or not) whose comm matches one of these globs is never counted. Empty by default.</summary>
    public List<string> IgnoreCommands { get; set; } = [];

    /// <summary>Where the host's /proc is (a node-agent in a container may see it at /host/proc).</summary>
    public string ProcRoot { get; set; } = "/proc";

    /// <summary>How many offenders a finding list and the message name at most.</summary>
    public int MaxListed { get; set; } = 20;

    protected override IEnumerable<string> ValidateCheck(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Positive(section, nameof(After), After));
        p.AddRange(Check.Required(section, nameof(ProcRoot), ProcRoot));
        if (Warning < 1)
        {
            p.Add($"{Check.Key(section, nameof(Warning))}: must be at least 1 (got {Warning})");
        }

        if (Failing < Warning)
        {
            p.Add($"{Check.Key(section, nameof(Failing))}: must be at least Warning ({Warning}), got {Failing}");
        }

        if (MaxListed < 1)
        {
            p.Add($"{Check.Key(section, nameof(MaxListed))}: must be at least 1 (got {MaxListed})");
        }

        return p;
    }
}
