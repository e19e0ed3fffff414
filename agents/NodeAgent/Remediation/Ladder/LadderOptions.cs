using Toolforge.Agents.Common.Options;

namespace Toolforge.Agents.NodeAgent.Remediation.Ladder;

/// <summary>
/// NodeAgent:Remediation:Ladder: the incident ladder (restart the unit → cordon and drain → reboot through logind →
/// an admin's hard-reset command), each rung with its own timeout, then back to service only once healthy. Off by
/// default, and every trigger is off by default too.
/// </summary>
public sealed class LadderOptions : IValidatedOptions
{
    public bool Enabled { get; set; }

    /// <summary>How often the ladder looks at its triggers and its open incident.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the coordinator's lease is renewed while an incident is open past its restart rung.</summary>
    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>After an incident ends, no new one starts for this long (the same trouble does not cordon again at once).</summary>
    public TimeSpan Cooldown { get; set; } = TimeSpan.FromHours(1);

    public RestartRung Restart { get; set; } = new();

    public DrainRung Drain { get; set; } = new();

    public RebootRung Reboot { get; set; } = new();

    public HardResetRung HardReset { get; set; } = new();

    public RecoverRung Recover { get; set; } = new();

    public LadderTriggers Triggers { get; set; } = new();

    public LadderHolds Holds { get; set; } = new();

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        p.AddRange(Check.Positive(section, nameof(Interval), Interval));
        p.AddRange(Check.Positive(section, nameof(RenewInterval), RenewInterval));
        p.AddRange(Check.Positive(section, nameof(Cooldown), Cooldown));
        p.AddRange(Restart.Validate(Check.Key(section, nameof(Restart))));
        p.AddRange(Drain.Validate(Check.Key(section, nameof(Drain))));
        p.AddRange(Reboot.Validate(Check.Key(section, nameof(Reboot))));
        p.AddRange(HardReset.Validate(Check.Key(section, nameof(HardReset))));
        p.AddRange(Recover.Validate(Check.Key(section, nameof(Recover))));
        p.AddRange(Triggers.Validate(Check.Key(section, nameof(Triggers))));
        p.AddRange(Holds.Validate(Check.Key(section, nameof(Holds))));
        return p;
    }
}

/// <summary>Restart the unit in trouble (kubelet, or the CRI runtime's unit) over D-Bus, then wait Timeout for it to be healthy.</summary>
public sealed class RestartRung : IValidatedOptions
{
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A restart that failed (D-Bus) is tried again after this long.</summary>
    public TimeSpan Cooldown { get; set; } = TimeSpan.FromMinutes(1);

    public IEnumerable<string> Validate(string section) =>
        Check.Positive(section, nameof(Timeout), Timeout).Concat(Check.Positive(section, nameof(Cooldown), Cooldown));
}

/// <summary>Cordon and drain (NodeAgent:Remediation:Drain, which must be enabled); a drain that ends blocked, slow, refused or failed is tried again after Cooldown, and after Timeout the incident stalls for an admin.</summary>
public sealed class DrainRung : IValidatedOptions
{
    public TimeSpan Timeout { get; set; } = TimeSpan.FromHours(2);

    public TimeSpan Cooldown { get; set; } = TimeSpan.FromMinutes(5);

    public IEnumerable<string> Validate(string section) =>
        Check.Positive(section, nameof(Timeout), Timeout).Concat(Check.Positive(section, nameof(Cooldown), Cooldown));
}

/// <summary>Reboot through logind (org.freedesktop.login1.Manager.Reboot), at most once per incident; a boot that has not changed after Timeout goes to the hard reset (or stalls).</summary>
public sealed class RebootRung : IValidatedOptions
{
    public bool Enabled { get; set; } = true;

    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(15);

    public IEnumerable<string> Validate(string section) => Check.Positive(section, nameof(Timeout), Timeout);
}

/// <summary>An admin's command (argv, no shell) that resets this machine from outside (the OpenStack force-reboot); empty (the default): no such rung. Run at most once per incident, killed after Timeout.</summary>
public sealed class HardResetRung : IValidatedOptions
{
    public List<string> Command { get; set; } = [];

    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(15);

    public IEnumerable<string> Validate(string section)
    {
        var p = Check.Positive(section, nameof(Timeout), Timeout).ToList();
        if (Command.Count > 0 && !Path.IsPathFullyQualified(Command[0]))
        {
            p.Add($"{Check.Key(section, nameof(Command))}: the program must be an absolute path (got \"{Command[0]}\")");
        }

        return p;
    }
}

/// <summary>After the reboot: the Node Ready=True and this agent's checks green, continuously for HealthyFor, before the uncordon; not so within Timeout: the incident stalls (the node stays cordoned) for an admin.</summary>
public sealed class RecoverRung : IValidatedOptions
{
    public TimeSpan HealthyFor { get; set; } = TimeSpan.FromMinutes(10);

    public TimeSpan Timeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Checks that must be passing too, besides the kubelet's, the runtime's and node.stuck-processes; one never reported by this agent since it started (not run, mistyped) is not green.</summary>
    public List<string> Checks { get; set; } = [];

    public IEnumerable<string> Validate(string section) =>
        Check.Positive(section, nameof(HealthyFor), HealthyFor).Concat(Check.Positive(section, nameof(Timeout), Timeout))
            .Concat(Checks.Where(n => n.Length == 0 || Common.Reporting.ReportFitter.CheckName(n) != n)
                .Select(n => $"{Check.Key(section, nameof(Checks))}: \"{Common.Cli.Output.Escape(n.Length > 128 ? n[..128] + "..." : n)}\" cannot be a check's name (1-128 characters: a letter or digit, then letters, digits and ._/:-)"));
}

public sealed class LadderTriggers : IValidatedOptions
{
    /// <summary>Processes in D on a network mount (node.stuck-processes) for After or longer: the incident starts at the drain.</summary>
    public TriggerAfter StuckProcesses { get; set; } = new();

    /// <summary>kubelet's checks still failing After the guarded restart (NodeAgent:Remediation:Kubelet) or, without one, After they began failing: the ladder restarts it first.</summary>
    public TriggerAfter Kubelet { get; set; } = new();

    /// <summary>The CRI runtime's checks (runtime.NAME, NAME.unit) failing for After: the ladder restarts its unit first.</summary>
    public TriggerAfter Runtime { get; set; } = new();

    /// <summary>Path exists (reboot-notifier writes /var/run/reboot-required): the incident starts at the drain; the pool's windows at the coordinator decide when it may cordon.</summary>
    public RebootRequiredTrigger RebootRequired { get; set; } = new();

    public IEnumerable<string> Validate(string section) =>
        StuckProcesses.Validate(Check.Key(section, nameof(StuckProcesses)))
            .Concat(Kubelet.Validate(Check.Key(section, nameof(Kubelet))))
            .Concat(Runtime.Validate(Check.Key(section, nameof(Runtime))))
            .Concat(RebootRequired.Validate(Check.Key(section, nameof(RebootRequired))));
}

public sealed class TriggerAfter : IValidatedOptions
{
    public bool Enabled { get; set; }

    public TimeSpan After { get; set; } = TimeSpan.FromMinutes(10);

    public IEnumerable<string> Validate(string section) => Check.Positive(section, nameof(After), After);
}

public sealed class RebootRequiredTrigger : IValidatedOptions
{
    public bool Enabled { get; set; }

    public string Path { get; set; } = "/var/run/reboot-required";

    public IEnumerable<string> Validate(string section) =>
        System.IO.Path.IsPathFullyQualified(Path) ? [] : [$"{Check.Key(section, nameof(Path))}: must be an absolute path (got \"{Path}\")"];
}

/// <summary>What stops a new incident (an open one goes on): the Node's label or annotation Key (any value), or one of LockFiles existing (puppet's agent disabled).</summary>
public sealed class LadderHolds : IValidatedOptions
{
    public string Key { get; set; } = "remediation.toolforge.org/hold";

    public List<string> LockFiles { get; set; } = ["/var/lib/puppet/state/agent_disabled.lock", "/opt/puppetlabs/puppet/cache/state/agent_disabled.lock"];

    public IEnumerable<string> Validate(string section)
    {
        var p = new List<string>();
        if (Key.Length is 0 or > 316 || Key.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/')))
        {
            p.Add($"{Check.Key(section, nameof(Key))}: a label or annotation key such as remediation.toolforge.org/hold (got \"{Key}\")");
        }

        p.AddRange(LockFiles.Where(f => !System.IO.Path.IsPathFullyQualified(f)).Select(f => $"{Check.Key(section, nameof(LockFiles))}: must be absolute paths (got \"{f}\")"));
        return p;
    }
}
